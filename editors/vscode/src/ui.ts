// The part of the VS Code API the flows use, as plain interfaces.
//
// Only `extension.ts` imports `vscode`; it adapts the real API to these interfaces. The flows and
// their tests depend on these interfaces alone, so the tests run without an editor.

/** A disposable registration. */
export interface Disposable {
  dispose(): void;
}

/** vscode.CancellationToken, reduced. */
export interface CancellationToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): Disposable;
}

/** vscode.QuickPickItem, reduced. */
export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
  /** Shown as a separator (vscode.QuickPickItemKind.Separator) by the adapter. */
  separator?: boolean;
}

export interface PickOptions {
  title?: string;
  placeHolder?: string;
}

export interface InputOptions {
  title?: string;
  prompt?: string;
  placeHolder?: string;
  value?: string;
  password?: boolean;
  /** Returns an error text for an invalid value, or undefined when it is valid. */
  validateInput?(value: string): string | undefined;
}

export interface ProgressOptions {
  title: string;
  cancellable: boolean;
}

export interface Progress {
  report(value: { message?: string; increment?: number }): void;
}

/** The editor's user interface, as the flows use it. */
export interface Ui {
  showInformationMessage(message: string, ...items: string[]): Promise<string | undefined>;
  showWarningMessage(message: string, ...items: string[]): Promise<string | undefined>;
  /** A modal warning: the answer is one of `items`, or undefined when dismissed. */
  showModalWarning(message: string, ...items: string[]): Promise<string | undefined>;
  showErrorMessage(message: string, ...items: string[]): Promise<string | undefined>;
  showQuickPick<T extends PickItem>(items: T[], options?: PickOptions): Promise<T | undefined>;
  showInputBox(options: InputOptions): Promise<string | undefined>;
  withProgress<R>(
    options: ProgressOptions,
    task: (progress: Progress, token: CancellationToken) => Promise<R>,
  ): Promise<R>;
  /** vscode.env.openExternal: resolves false when the URL could not be opened (or the user said no). */
  openExternal(url: string): Promise<boolean>;
  copyToClipboard(text: string): Promise<void>;
}

/** vscode.Memento (context.globalState), reduced. Holds the profiles' non-secret data. */
export interface Memento {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): PromiseLike<void>;
}

/** vscode.SecretStorage (context.secrets), reduced. Holds the API keys. */
export interface SecretStorage {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

/** vscode.StatusBarItem, reduced. */
export interface StatusItem {
  text: string;
  /** A string here; vscode also allows a MarkdownString. */
  tooltip: string | object | undefined;
  /** A command id here; vscode also allows a Command object. */
  command: string | object | undefined;
  show(): void;
}
