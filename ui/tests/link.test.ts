import { displayRoom, normalizeRoom, parseJoinLink, parseRoomInput } from "../src/link";

test("room ids fold case, separators and look-alikes", () => {
  expect(normalizeRoom("abcde-fghjk")).toBe("ABCDEFGHJK");
  expect(normalizeRoom(" 0o1il 23456 ")).toBe("0011123456");
  expect(normalizeRoom("ABCDE")).toBeNull();
  expect(normalizeRoom("ABCDE-FGHJU")).toBeNull(); // U is not Crockford
  expect(displayRoom("abcdefghjk")).toBe("ABCDE-FGHJK");
});

test("join links carry room, password and server in any of their forms", () => {
  expect(parseJoinLink("ferry://join/ABCDE-FGHJK")).toEqual({ room: "ABCDEFGHJK" });
  expect(parseJoinLink("ferry://join/ABCDEFGHJK/purple-otter-7")).toEqual({ room: "ABCDEFGHJK", password: "purple-otter-7" });
  expect(parseJoinLink("ferry://join/ABCDEFGHJK?password=a%20b&server=ws%3A%2F%2F10.0.0.2%3A7070")).toEqual({
    room: "ABCDEFGHJK",
    password: "a b",
    server: "ws://10.0.0.2:7070",
  });
  expect(parseJoinLink("ferry://join/ABCDEFGHJK#pw")).toEqual({ room: "ABCDEFGHJK", password: "pw" });
  expect(parseJoinLink("https://join/ABCDEFGHJK")).toBeNull();
  expect(parseJoinLink("ferry://join/nope")).toBeNull();
});

test("the room field takes a plain id or a pasted link", () => {
  expect(parseRoomInput("abcde fghjk")).toEqual({ room: "ABCDEFGHJK" });
  expect(parseRoomInput("ferry://join/ABCDEFGHJK/pw")).toEqual({ room: "ABCDEFGHJK", password: "pw" });
  expect(parseRoomInput("hello")).toBeNull();
});
