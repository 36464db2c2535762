/**
 * A secure-aggregation round cannot go on: a message failed validation, a stage was called out
 * of order, or too few clients remain to recover the masks. The message names the stage and,
 * where one is to blame, the client.
 */
export class SecAggError extends Error {
  override name = 'SecAggError';
  constructor(
    readonly stage: string,
    message: string,
    readonly client?: number,
  ) {
    super(
      `secure aggregation, ${stage}${client === undefined ? '' : `, client ${client}`}: ${message}`,
    );
  }
}
