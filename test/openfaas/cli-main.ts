// Runs the pifaas CLI from source (through tsx) so tests see exactly what a user sees:
// stdout, stderr, the exit code, stdin.
import { main } from '../../src/cli.js';

await main(process.argv);
