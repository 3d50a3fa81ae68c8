// Runs synopsys' own HTTP service (synopsys 5.1.1, pinned in package-lock.json) on
// 127.0.0.1:<port> (argv[2], default 0 = a free port) over a fresh in-memory store: the judge
// the HTTP black-box tests send the same requests to. Prints exactly one stdout line,
// `listening http://127.0.0.1:<port>`, once it accepts connections; exits when stdin closes
// (the test drops its pipe) or on SIGTERM.
//
// It wires the package's own pieces the way its src/main.js does; main.js itself can't be
// imported (it starts itself at import, on an LMDB store, port from $PORT, 0.0.0.0).
import { Task } from 'synopsys'
import * as Service from 'synopsys/service'
import * as Store from 'synopsys/store/memory'
import * as Blobs from 'synopsys/blob/memory'

// src/http.js (node request -> Request, Response -> node response) is not in the package's
// `exports`, so load it by file; it needs @web-std/fetch and @web-std/stream, which synopsys
// lists only as devDependencies, hence their pins in package.json.
const HTTP = await import(new URL('./http.js', import.meta.resolve('synopsys')).href)

const port = Number(process.argv[2] ?? 0)

// No sync service: main.js opens one on a file; without it the sync routes answer 503.
const service = await Task.perform(
  Service.open({ store: await Task.perform(Store.open()), blobs: await Task.perform(Blobs.open()) })
)
const socket = await Task.perform(HTTP.listen({ port, hostname: '127.0.0.1' }))

// Lifetime is tied to the parent: it holds our stdin; EOF means it is gone.
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
// A query whose evaluation fails (unknown clause, bad Match operator…) is answered (404 for
// GET json; SSE: 200 then an empty stream) but datalogia also leaves the failed task's
// promise rejected and unobserved; Node's default would then kill the process, i.e. the
// stock server dies after answering. Keep serving so one bad query doesn't take the judge
// down; stderr only, stdout stays one line.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`synopsys-server: unhandled rejection: ${reason?.stack ?? reason}\n`)
})

process.stdout.write(`listening http://127.0.0.1:${HTTP.port(socket)}\n`)

// main.js's serve loop: each request event answered by Service.fetch.
for await (const event of HTTP.open(socket)) {
  event.respondWith(service.fetch(event.request))
}
