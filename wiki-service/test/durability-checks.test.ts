import { describe, expect, it } from 'vitest';
import { mergeAcknowledged, type Acknowledged } from '@wiki/test-support/writers';

// The checks the durability tests rely on must not hide a lost write. A lost commit
// whose id is handed out again after a restart would, in a plain map of
// acknowledgements, be overwritten by the second write, and never checked.

describe('acknowledgements kept across restarts', () => {
  const run = (users: Array<[number, string]>, posts: Array<[number, string]> = []): Acknowledged => ({
    users: new Map(users),
    posts: new Map(posts.map(([id, content]) => [id, { userId: 1, content }])),
  });

  it('an id acknowledged before a restart and again after it is reported, and neither write is dropped silently', () => {
    const all = run([]);
    expect(
      mergeAcknowledged(
        all,
        run(
          [
            [1, 'a'],
            [2, 'b'],
          ],
          [[10, 'first post']],
        ),
      ),
    ).toEqual([]);
    expect(
      mergeAcknowledged(
        all,
        run(
          [
            [2, 'c'],
            [3, 'd'],
          ],
          [[10, 'second post']],
        ),
      ),
    ).toEqual(['user id 2 acknowledged twice: "b", then "c"', 'post id 10 acknowledged twice']);
    expect([...all.users.keys()]).toEqual([1, 2, 3]);
  });
});
