// Why: every failure a user can act on (bad input, unreachable host, missing package) is thrown as a
// UserError carrying what went wrong and what to do next; the CLI prints it without a stack trace.
// Anything else reaching the top is a bug and is printed with its stack.

export class UserError extends Error {
  override readonly name = 'UserError';

  constructor(
    message: string,
    /** What the user can do next, printed as "hint: ..." under the message. */
    readonly hint?: string,
    /** Process exit code: 1, as for commander's own usage errors, unless a command documents another. */
    readonly exitCode = 1,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
