/**
 * The Node flags the worker always runs with: in the image (Dockerfile CMD), in `npm run worker`,
 * in the tests and in the benchmark. A test keeps the Dockerfile and package.json in step with this.
 *
 * --max-semi-space-size=1: streamed chunks are 64 KiB Buffers whose memory is freed only when V8
 * collects their small wrappers. With the default young generation, Node 24 let ~90 MiB of dead
 * chunks pile up (peak RSS ~157 MiB on a 200 MiB object); 1 MiB semi-spaces collect them early
 * (~120 MiB). See task-image/README.md, "Memory".
 */
export const WORKER_NODE_FLAGS = ['--enable-source-maps', '--max-semi-space-size=1'] as const;
