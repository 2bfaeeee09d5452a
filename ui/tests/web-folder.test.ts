// The folder sink's naming (ui/src/web/sink-folder.ts): the sender's paths cleaned by the
// native receiver's rules (the table of crates/ferry-core/src/fsio/names.rs `sanitisation_table`),
// and a taken name moving on to `name (1).ext`. Writing into a real picked folder is
// ui/e2e/web-folder.e2e.mjs.
import { numbered, sanitizePath } from "../src/web/sink-folder";
import { WebError } from "../src/web/signal";

const ok = (raw: string) => sanitizePath(raw).join("/");
const refusal = (raw: string): string => {
  try {
    sanitizePath(raw);
  } catch (e) {
    if (!(e instanceof WebError) || e.code !== "protocol") throw e;
    return e.message;
  }
  throw new Error(`${JSON.stringify(raw)} was not refused`);
};

test("paths are cleaned as the native receiver cleans them", () => {
  const cases: [string, string | { err: string }][] = [
    ["a.txt", "a.txt"],
    ["dir/sub/a.txt", "dir/sub/a.txt"],
    ["dir\\sub\\a.txt", "dir/sub/a.txt"],
    ["./a//b/./c", "a/b/c"],
    ["../etc/passwd", { err: "parent" }],
    ["a/../../b", { err: "parent" }],
    ["a\\..\\b", { err: "parent" }],
    ["/etc/passwd", { err: "absolute" }],
    ["\\\\server\\share\\x", { err: "absolute" }],
    ["C:\\Windows\\x", { err: "absolute" }],
    ["c:x", { err: "absolute" }],
    ["CON", "_CON"],
    ["nul.txt", "_nul.txt"],
    ["dir/com1.log", "dir/_com1.log"],
    ["com0", "com0"],
    ["console.txt", "console.txt"],
    ["bell\u0007\nname", "bellname"],
    ['what?<>|*".txt', "what______.txt"],
    ["a:b", { err: "absolute" }],
    ["ab:c", "ab_c"],
    ["trail. . ", "trail"],
    ["e\u0301t\u00e9", "\u00e9t\u00e9"],
    ["\ufffdbad\ufffd.bin", "\ufffdbad\ufffd.bin"],
    ["", { err: "empty" }],
    ["./.", { err: "empty" }],
    ["\u0001\u0002", { err: "empty" }],
    ["ok/. .", "ok"],
    ["...", { err: "empty" }],
    ["COM\u00b9", "_COM\u00b9"],
    ["lpt\u00b2.txt", "_lpt\u00b2.txt"],
    ["dir/Com\u00b3. .", "dir/_Com\u00b3"],
    ["COM\u00b3 .log", "_COM\u00b3 .log"],
    ["COM\u00b9\u00b9", "COM\u00b9\u00b9"],
    ["COM\u2074", "COM\u2074"],
    ["report\u202efdp.exe", "reportfdp.exe"],
    ["a\u200bb\u200dc\u2060d\ufeffe\u2067f\u200fg\u061c.txt", "abcdefg.txt"],
    ["\u202a\u200b", { err: "empty" }],
    ["C\u200bON", "_CON"],
    // Only ASCII letters fold for the device-name check.
    ["con\u0131n$", "con\u0131n$"],
  ];
  for (const [raw, want] of cases) {
    if (typeof want === "string") expect(ok(raw), JSON.stringify(raw)).toBe(want);
    else expect(refusal(raw), JSON.stringify(raw)).toContain(want.err);
  }
});

test("length and depth limits", () => {
  expect(refusal("x".repeat(256))).toContain("255 bytes");
  expect(ok("x".repeat(255))).toHaveLength(255);
  // 255 bytes of UTF-8, not 255 characters.
  expect(refusal("\u00e9".repeat(128))).toContain("255 bytes");
  expect(refusal(Array(65).fill("d").join("/"))).toContain("too deep");
  expect(refusal(Array(25).fill("y".repeat(200)).join("/"))).toContain("too long");
});

test("a taken name moves on to name (n).ext, as the native receiver's landing_path", () => {
  expect(numbered("a.txt", 1)).toBe("a (1).txt");
  expect(numbered("a.txt", 2)).toBe("a (2).txt");
  expect(numbered("README", 1)).toBe("README (1)");
  expect(numbered("archive.tar.gz", 1)).toBe("archive.tar (1).gz");
  expect(numbered(".bashrc", 1)).toBe(".bashrc (1)");
});
