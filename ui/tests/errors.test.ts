import { humanError, wrongPasswordNotice } from "../src/errors";

test("the four errors people meet most read as plain words with a retry", () => {
  for (const [code, title] of [
    ["wrong-password", "Wrong password"],
    ["room-expired", "Room expired"],
    ["peer-left", "The other side left"],
    ["disk-full", "Disk full"],
  ]) {
    const e = humanError(code, "raw engine text");
    expect(e.title).toBe(title);
    expect(e.retry).toBe(true);
    expect(e.detail).not.toContain("raw engine text");
  }
});

test("aliases map to the same message and unknown codes keep the engine's text", () => {
  expect(humanError("enospc").title).toBe("Disk full");
  expect(humanError("key-confirmation-failed").title).toBe("Wrong password");
  expect(humanError("room-full").retry).toBe(false);
  expect(humanError("weird-thing", "socket closed")).toEqual({ title: "Something went wrong", detail: "socket closed", retry: true });
});

test("wrong-password notice says how many attempts remain", () => {
  expect(wrongPasswordNotice(null)).toBe("Someone tried a wrong password.");
  expect(wrongPasswordNotice(2)).toContain("2 attempts left");
  expect(wrongPasswordNotice(1)).toContain("1 attempt left");
  expect(wrongPasswordNotice(0)).toContain("locked");
  expect(wrongPasswordNotice(4294967295)).toBe("Someone tried a wrong password.");
});
