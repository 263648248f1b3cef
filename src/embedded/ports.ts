import net from 'node:net';

/**
 * Asks the OS for a free TCP port on `host` (default 127.0.0.1).
 *
 * Nothing reserves the port after this returns, so a caller should bind it promptly. On Linux the kernel hands out
 * ephemeral ports randomly and may give the same one to the next `listen(0)`; to make that unlikely we connect to the
 * port and close the accepted socket from the server side, which parks the port in TIME_WAIT (about 60 s). While it is
 * there `bind(0)` will not pick it, yet an explicit bind with SO_REUSEADDR (which both Go and libuv set) still works.
 * This is the technique the Temporal CLI itself uses for its internal ports.
 */
export function getFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`could not read the port bound on ${host}`));
        return;
      }
      const port = address.port;
      if (process.platform === 'darwin' || process.platform === 'win32') {
        // These allocate ephemeral ports sequentially, so the TIME_WAIT trick would only waste ports.
        server.close(() => resolve(port));
        return;
      }
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        client.destroy();
        server.close(() => resolve(port));
      };
      server.once('connection', (accepted) => {
        // Server side closes first: that end is the one that enters TIME_WAIT, on our port.
        accepted.destroy();
        finish();
      });
      const client = net.connect(port, host);
      // The reservation is best effort; if the probe connection fails the port itself is still good.
      client.on('error', finish);
    });
  });
}
