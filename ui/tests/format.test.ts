import { displayName, formatBytes, formatCountdown, formatDuration, formatRate, percent } from "../src/format";

test("bytes use decimal units with sensible precision", () => {
  expect(formatBytes(0)).toBe("0 B");
  expect(formatBytes(999)).toBe("999 B");
  expect(formatBytes(1000)).toBe("1.00 KB");
  expect(formatBytes(1_536_000)).toBe("1.54 MB");
  expect(formatBytes(12_345_678_901)).toBe("12.3 GB");
  expect(formatBytes(-1)).toBe("—");
});

test("rate and duration", () => {
  expect(formatRate(0)).toBe("—");
  expect(formatRate(25_000_000)).toBe("25.0 MB/s");
  expect(formatDuration(null)).toBe("—");
  expect(formatDuration(45)).toBe("45 s");
  expect(formatDuration(185)).toBe("3 min 05 s");
  expect(formatDuration(7620)).toBe("2 h 07 min");
});

test("countdown counts to the deadline and then says expired", () => {
  const now = 1_000_000_000_000;
  expect(formatCountdown(now / 1000 + 3599, now)).toBe("59:59");
  expect(formatCountdown(now / 1000 + 3661, now)).toBe("1:01:01");
  expect(formatCountdown(now / 1000 - 1, now)).toBe("expired");
});

test("percent is clamped and floors", () => {
  expect(percent(1, 3)).toBe(33);
  expect(percent(5, 3)).toBe(100);
  expect(percent(0, 0)).toBe(0);
});

test("names show their invisible characters instead of obeying them", () => {
  expect(displayName("report\u202efdp.exe")).toBe("report\\u{202e}fdp.exe");
  expect(displayName("a\u200bb\u2066c\ufeff")).toBe("a\\u{200b}b\\u{2066}c\\u{feff}");
  expect(displayName("\u001b[2Jx\u009b")).toBe("\\u{1b}[2Jx\\u{9b}");
  // Ordinary text, right-to-left scripts included, is left alone.
  expect(displayName("résumé שלום.txt")).toBe("résumé שלום.txt");
});
