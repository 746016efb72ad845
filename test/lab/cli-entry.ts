// Runs the pifaas CLI from source (tests spawn it with `node --import tsx`), as bin/pifaas.js does from dist.
import { main } from '../../src/cli.js';

await main(process.argv);
