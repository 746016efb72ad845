// Runs the pifaas CLI from source (for tests that spawn it, e.g. under strace): node --import tsx test/burn/run-cli.ts burn ...
import { main } from '../../src/cli.js';

await main(process.argv);
