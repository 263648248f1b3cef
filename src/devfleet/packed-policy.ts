import { deflateRawSync } from 'node:zlib';

/**
 * devfleet's estimate of STS's PackedPolicySize: the percentage of the packed limit that a session
 * policy plus session tags use.
 *
 * AWS does not publish its packing format, only that policies and tags are compressed into a binary
 * form with a fixed limit, that the plaintext policy may be at most 2,048 characters, and that the
 * result is reported as a percentage. The estimate keeps what matters for callers that check it
 * before they assume a role: repetitive policies pack well, policies full of distinct ARNs and large
 * tag sets do not, and more content never packs smaller by much. It is:
 *
 *   packed bytes = raw DEFLATE (level 9) of  minified policy JSON + "\n" + one "key=value\n" per tag
 *   percentage   = ceil(packed bytes × 100 / 1,024)
 *
 * So a typical least-privilege policy of a few statements lands around 20–40 %, and a 2,048-character
 * policy of random-looking ARNs, or 50 long tags, goes over 100 % and fails with PackedPolicyTooLarge.
 */
export const PACKED_BUDGET_BYTES = 1024;

export function packedPolicySizePercent(
  policyJson: string | undefined,
  tags: readonly { key: string; value: string }[],
): number {
  let policy = '';
  if (policyJson !== undefined) {
    try {
      policy = JSON.stringify(JSON.parse(policyJson));
    } catch {
      // Callers validate the JSON first; an unparsable policy is measured as written.
      policy = policyJson;
    }
  }
  const text = policy + '\n' + tags.map((t) => `${t.key}=${t.value}\n`).join('');
  const packed = deflateRawSync(Buffer.from(text, 'utf8'), { level: 9 }).length;
  return Math.ceil((packed * 100) / PACKED_BUDGET_BYTES);
}
