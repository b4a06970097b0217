// Compile-only check (npm run typecheck): the public API accepts the real SDK Client types.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';

import { captureException, init, instrumentMcpClient, setEnabled, shutdown } from '../../dist/index.js';

init({ serviceName: 'typed', endpoint: 'http://127.0.0.1:4318', consoleLevel: 'warn', sampleRatio: 0.5 });
const client: Client = instrumentMcpClient(new Client({ name: 'typed', version: '1.0.0' }));
void client.callTool({ name: 'x', arguments: {} });
const traceId: string | undefined = captureException(new Error('x'), { 'app.step': 'typed' });
setEnabled(traceId !== undefined);
void shutdown();
