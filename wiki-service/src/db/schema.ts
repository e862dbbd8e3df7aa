import type { Generated } from 'kysely';

// The tables as Kysely sees them. Timestamps arrive as ISO 8601 strings (see
// `parseTimestamptz` in types.ts), never as Date, which would drop the microseconds.

interface UsersTable {
  id: Generated<number>;
  name: string;
  created_time: Generated<string>;
}

interface PostsTable {
  id: Generated<number>;
  user_id: number;
  content: string;
  created_time: Generated<string>;
}

export interface Database {
  users: UsersTable;
  posts: PostsTable;
}
