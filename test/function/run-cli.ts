// Runs the pifaas CLI from source for tests that spawn it: node --import tsx test/function/run-cli.ts serve ...
import { main } from '../../src/cli.js';

await main(process.argv);
