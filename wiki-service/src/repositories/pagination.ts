// Keyset pagination: a page is "the next `limit` rows with an id above the cursor",
// which stays fast and stable however deep the client pages (no OFFSET scans, no
// rows skipped or repeated when others are inserted meanwhile).

export interface PageRequest {
  limit: number;
  /** The last id of the previous page; absent for the first page. */
  after?: number;
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to fetch the next page; null on the last page. */
  nextCursor: string | null;
}

/** Turns `limit + 1` fetched rows into a page, the extra row telling whether more exist. */
export function toPage<T>(rows: T[], limit: number, idOf: (row: T) => number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const hasMore = rows.length > limit && last !== undefined;
  return { items, nextCursor: hasMore ? String(idOf(last)) : null };
}
