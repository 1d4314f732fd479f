// Makes `require('vscode')` load the stub: import this before anything that imports `vscode`.
import Module = require('node:module');

const stubPath = require.resolve('./vscodeStub');
const mod = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const original = mod._resolveFilename;
mod._resolveFilename = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? stubPath : original.call(this, request, ...rest);
};
