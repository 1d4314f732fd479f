// A stand-in for the `vscode` module, enough for `src/extension.ts` to activate outside the
// editor. `test/helpers/useVscodeStub.ts` makes `require('vscode')` resolve here.

type Handler = (...args: unknown[]) => unknown;

export const recorded = {
  commands: new Map<string, Handler>(),
  executed: [] as Array<{ command: string; args: unknown[] }>,
  messages: [] as Array<{ level: string; text: string; items: unknown[] }>,
  statusItems: [] as Array<{ text: string; tooltip: unknown; command: unknown; shown: boolean }>,
  quickPicks: [] as Array<{ items: any[]; options: unknown }>,
  opened: [] as string[],
  /** What showQuickPick answers, given the items it got. */
  pickAnswer: (items: any[]): any => items[0],
  /** What a message with buttons answers (default: dismissed). */
  messageAnswer: (_level: string, _text: string, _items: unknown[]): unknown => undefined,
  reset() {
    this.commands.clear();
    this.executed.length = 0;
    this.messages.length = 0;
    this.statusItems.length = 0;
    this.quickPicks.length = 0;
    this.opened.length = 0;
    this.messageAnswer = () => undefined;
  },
};

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}
export enum QuickPickItemKind {
  Separator = -1,
  Default = 0,
}

export class Uri {
  private constructor(private readonly value: string) {}
  static parse(value: string): Uri {
    return new Uri(value);
  }
  toString(): string {
    return this.value;
  }
}

const disposable = { dispose() {} };

function message(level: string) {
  return async (text: string, ...items: unknown[]) => {
    recorded.messages.push({ level, text, items });
    return recorded.messageAnswer(level, text, items);
  };
}

export const window = {
  createStatusBarItem() {
    const item = {
      text: '',
      tooltip: undefined as unknown,
      command: undefined as unknown,
      shown: false,
      show() {
        item.shown = true;
      },
      hide() {
        item.shown = false;
      },
      dispose() {},
    };
    recorded.statusItems.push(item);
    return item;
  },
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  async showQuickPick(items: any[], options: unknown) {
    recorded.quickPicks.push({ items, options });
    return recorded.pickAnswer(items);
  },
  async showInputBox() {
    return undefined;
  },
  async withProgress(_options: unknown, task: (p: unknown, t: unknown) => Promise<unknown>) {
    return task(
      { report() {} },
      { isCancellationRequested: false, onCancellationRequested: () => disposable },
    );
  },
  onDidChangeWindowState() {
    return disposable;
  },
};

export const commands = {
  registerCommand(id: string, handler: Handler) {
    if (recorded.commands.has(id)) throw new Error(`command ${id} registered twice`);
    recorded.commands.set(id, handler);
    return { dispose: () => recorded.commands.delete(id) };
  },
  async executeCommand(command: string, ...args: unknown[]) {
    recorded.executed.push({ command, args });
    const handler = recorded.commands.get(command);
    return handler ? handler(...args) : undefined;
  },
};

export const env = {
  async openExternal(uri: Uri) {
    recorded.opened.push(uri.toString());
    return true;
  },
  clipboard: {
    async writeText() {},
  },
};
