import { untilSignal } from '../log.ts';

/**
 * For a part's process entry point: listens for SIGINT, SIGTERM and (when supervised) the supervisor's pipe closing
 * from the very first moment, not only once the part is up. A stop that comes while the part is still starting ends
 * the process at once: nothing has run yet that needs finishing, and a part left starting after its supervisor died
 * would come up orphaned and take work meant for the next stack.
 */
export function exitIfStoppedWhileStarting(
  supervised: boolean,
  onEarlyStop: () => void,
): { stopped: Promise<NodeJS.Signals>; started: () => void } {
  let up = false;
  const stopped = untilSignal(supervised);
  // The pipe is only watched: it must not keep a part whose start failed from exiting with its error.
  if (supervised) (process.stdin as { unref?: () => void }).unref?.();
  void stopped.then(() => {
    if (up) return;
    onEarlyStop();
    process.exit(0);
  });
  return {
    stopped,
    started: () => {
      up = true;
    },
  };
}
