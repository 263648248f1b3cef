/**
 * What SSM keeps of a command's output. GetCommandInvocation returns only the first 24,000
 * characters of standard output and the first 8,000 of standard error (the rest goes only to S3
 * or CloudWatch Logs when the command asked for them), and it says nothing when it cut: the text
 * simply stops. mechanic marks such output so nobody mistakes the first part for all of it.
 */

/** SSM's limits, in characters: `StandardOutputContent` and `StandardErrorContent`. */
export const SSM_OUTPUT_LIMITS = { stdout: 24_000, stderr: 8_000 } as const;

export type OutputStream = keyof typeof SSM_OUTPUT_LIMITS;

/**
 * The streams of one invocation's output that reached SSM's limit, in the order stdout, stderr.
 * Output exactly at the limit counts as cut: it cannot be told apart from output SSM cut there.
 * Pass the text as SSM returned it, before redaction (which changes its length).
 */
export function ssmTruncated(output: { readonly stdout: string; readonly stderr: string }): OutputStream[] {
  return (['stdout', 'stderr'] as const).filter((s) => output[s].length >= SSM_OUTPUT_LIMITS[s]);
}

const STREAM_NAMES: Record<OutputStream, string> = { stdout: 'output', stderr: 'error output' };

/**
 * The sentence every view shows for output SSM cut, e.g. "output truncated by SSM: it returns
 * only the first 24,000 characters; the rest was not kept".
 */
export function truncationNote(stream: OutputStream): string {
  return `${STREAM_NAMES[stream]} truncated by SSM: it returns only the first ${SSM_OUTPUT_LIMITS[stream].toLocaleString('en-US')} characters; the rest was not kept`;
}

/**
 * SendCommand refusals that name instances, said as one sentence an operator can act on (AWS's
 * own words kept in it), or undefined for any other error. InvalidInstanceId is what AWS answers
 * for an instance whose SSM agent is not connected (or that is stopped, terminated or not this
 * account's); UnsupportedPlatformType for a document the instance's platform cannot run.
 */
export function sendRefusal(errorName: string, awsMessage: string): string | undefined {
  const ids = (text: string) => [...new Set(text.match(/\b(?:i-[0-9a-f]{8,17}|mi-[0-9a-f]{17})\b/g) ?? [])];
  const named = (list: readonly string[]) =>
    list.length === 0
      ? 'an instance of the step'
      : `${list.length === 1 ? 'instance' : 'instances'} ${list.join(', ')}`;
  switch (errorName) {
    case 'InvalidInstanceId':
      return `SSM refused to send the step to ${named(ids(awsMessage))} (InvalidInstanceId: ${awsMessage}): its SSM agent is not connected, or it is not running; bring the agent back online (ping status Online) or leave the instance out, then launch again`;
    case 'UnsupportedPlatformType':
      return `SSM refused to send the step to ${named(ids(awsMessage))} (UnsupportedPlatformType: ${awsMessage}): AWS-RunShellScript runs only on Linux; leave the instance out of the targets`;
    default:
      return undefined;
  }
}
