/**
 * An error about the user's input (a config, a data or split file, a path that is not a run or
 * comparison directory, an export request): its message names what is wrong and what was
 * expected, and is all a user needs to read. Library code throws it; only the CLI decides what
 * it means for the process (exit code 2, message without a stack).
 */
export class InputError extends Error {
  override name = 'InputError';
}
