/** One JSON object per stdout line: easy for people to read and for tests and scripts to parse. */

export const log = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`)
}
