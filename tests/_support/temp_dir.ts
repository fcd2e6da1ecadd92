/** A fresh directory under the system temp dir, removed by `using`. */
export function tempDir(prefix = "pve-cri-test-"): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix });
  return {
    path,
    [Symbol.dispose]() {
      Deno.removeSync(path, { recursive: true });
    },
  };
}
