// How column values come back from the database, in one place for both drivers:
// `pg` hands int8 over as a string and PGlite as a number, and both would turn
// timestamptz into a Date (millisecond precision). We want numbers and ISO strings.

export const PG_TYPE_INT8 = 20;
export const PG_TYPE_TIMESTAMPTZ = 1184;

export function parseInt8(text: string): number {
  return Number(text);
}

// PostgreSQL's text output with DateStyle ISO: "2026-11-23 10:05:50.193645+00",
// where the offset may also be "+05:30" or "+05:30:15".
const TIMESTAMPTZ_TEXT = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::(\d\d))?(?::\d\d)?$/;

/** Turns timestamptz text into ISO 8601 with an explicit offset, keeping every digit. */
export function parseTimestamptz(text: string): string {
  const match = TIMESTAMPTZ_TEXT.exec(text);
  if (match === null) return text;
  const [, date, time, offsetHours, offsetMinutes] = match;
  return `${date}T${time}${offsetHours}:${offsetMinutes ?? '00'}`;
}

// Both drivers run their sessions in UTC so every timestamp reads "+00:00": `pg` asks
// for it when it connects, PGlite (one session, in-process) with a SET.
export const SESSION_UTC_OPTIONS = '-c TimeZone=UTC';
export const SET_SESSION_UTC = "SET TIME ZONE 'UTC'";
