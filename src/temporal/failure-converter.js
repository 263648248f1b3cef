// The encrypting failure converter, as a plain ES module: the Temporal SDK `require()`s this file by path in Node
// (where no TypeScript loader may be active) and also bundles it into the workflow sandbox with webpack.
// With `encodeCommonAttributes`, failure messages and stack traces move into an encoded payload, so the payload
// codec encrypts them as well; an error message can quote command output.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
