import { pino, type Logger } from 'pino';

/**
 * JSON lines on stdout, one logger per process. `mechanic dev` reads its children's stdout and
 * recognizes the line whose msg is "ready" as the signal that a part is up.
 */
export function createLogger(name: string, level: string): Logger {
  return pino({
    name,
    level,
    base: { part: name },
    // Never log a credential or token, whichever object it sits in.
    redact: {
      paths: [
        '*.secretAccessKey',
        '*.sessionToken',
        '*.token',
        '*.authorization',
        'req.headers.authorization',
        '*.codecKeys',
      ],
      censor: '[REDACTED]',
    },
  });
}

/**
 * Resolves on the first SIGINT or SIGTERM — or, for a part started by `mechanic dev`, when its
 * supervisor goes away (the stdin pipe closes), so no part outlives the stack that started it.
 */
export function untilSignal(supervised: boolean): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
    if (supervised) {
      process.stdin.resume();
      process.stdin.once('end', () => on('SIGTERM'));
      process.stdin.once('error', () => on('SIGTERM'));
    }
  });
}
