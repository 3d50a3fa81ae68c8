// Reads one JSON value per line on stdin; prints merkle-reference's id of each (its URL
// form), one per line. The judge of src/storage/facts/reference.rs.
import { refer } from 'merkle-reference'
import { createInterface } from 'node:readline'

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  if (line.trim() === '') continue
  process.stdout.write(refer(JSON.parse(line)).toString() + '\n')
}
