import { displayRoom, normalizeRoom, parseJoinLink, parseRoomInput, webLink } from "../src/link";

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

test("browser links: parsed like ferry-core's JoinTicket, and made from a wss server's ferry:// link", () => {
  expect(parseJoinLink("https://ferry.example/j/ABCDE-FGHJK#a%20b%2050%25")).toEqual({ room: "ABCDEFGHJK", password: "a b 50%", server: "wss://ferry.example/ws" });
  expect(parseJoinLink("http://127.0.0.1:8080/j/abcdefghjk/")).toEqual({ room: "ABCDEFGHJK", server: "ws://127.0.0.1:8080/ws" });
  expect(parseJoinLink("https://app.example/j/ABCDEFGHJK?server=wss%3A%2F%2Fsignal.example%2Fws#pw")?.server).toBe("wss://signal.example/ws");
  expect(parseJoinLink("https://ferry.example/x/j/nope#pw")).toBeNull();
  const link = "ferry://join/ABCDE-FGHJK?server=wss%3A%2F%2Fferry.example%3A8443%2Fsignal%2Fws#gladly%20brave%2050%25";
  expect(webLink(link)).toBe("https://ferry.example:8443/signal/j/ABCDE-FGHJK#gladly%20brave%2050%25");
  expect(parseJoinLink(webLink(link) ?? "")).toEqual({ room: "ABCDEFGHJK", password: "gladly brave 50%", server: "wss://ferry.example:8443/signal/ws" });
  // A plain ws:// server (a LAN) or none: no browser link, the QR keeps the ferry:// one.
  expect(webLink("ferry://join/ABCDE-FGHJK?server=ws%3A%2F%2F10.0.0.2%3A7070%2Fws#pw")).toBeNull();
  expect(webLink("ferry://join/ABCDE-FGHJK#pw")).toBeNull();
});
