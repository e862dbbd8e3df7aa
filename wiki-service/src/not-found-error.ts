/** Something addressed by id does not exist: answered as 404 {"detail": message}. */
export class NotFoundError extends Error {
  readonly statusCode = 404;
  constructor(message: 'User not found' | 'Post not found') {
    super(message);
    this.name = 'NotFoundError';
  }
}
