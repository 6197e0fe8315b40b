/** `npm run ops -- <command>`: the operations CLI for the local stack and deployed stages (see docs/operations-cli.md). */
import { runCli } from './ops/cli.ts';
import { handleClosedOutput } from './ops/output.ts';

handleClosedOutput();

process.exitCode = await runCli(process.argv.slice(2));
