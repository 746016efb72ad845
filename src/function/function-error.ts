// Why: every way a request can go wrong (bad input, limits, upstream URL, overload) must reach the
// caller as an HTTP status plus a JSON body saying what was wrong; handlers throw FunctionError and
// the server renders it, so no error path can crash the process or leak a stack trace.

export class FunctionError extends Error {
  override readonly name = 'FunctionError';
  constructor(
    /** HTTP status to answer with. */
    readonly status: number,
    /** Stable machine-readable code, e.g. "bad_image", "body_too_large". */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The JSON error body: one `error` field (the OpenWhisk action contract asks for exactly that). */
export function errorBody(err: FunctionError): { error: { code: string; message: string } } {
  return { error: { code: err.code, message: err.message } };
}
