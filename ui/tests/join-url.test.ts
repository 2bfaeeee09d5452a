import { parseJoinUrl } from "../src/web/join-url";

const at = (href: string) => new URL(href);

test("a /j/ROOM#PASSWORD link: room from the path, password from the fragment, server is the page's own /ws", () => {
  expect(parseJoinUrl(at("https://ferry.example/j/ABCDE-FGHJK#gladly%20brave%2050%25"))).toEqual({
    server: "wss://ferry.example/ws",
    room: "ABCDEFGHJK",
    password: "gladly brave 50%",
  });
  expect(parseJoinUrl(at("http://127.0.0.1:8080/j/abcde-fghjk/#pw"))).toEqual({
    server: "ws://127.0.0.1:8080/ws",
    room: "ABCDEFGHJK",
    password: "pw",
  });
  // Under a path prefix the socket sits beside /j/, as `ferry send` derives the link.
  expect(parseJoinUrl(at("https://ferry.example:8443/signal/j/ABCDEFGHJK#pw")).server).toBe("wss://ferry.example:8443/signal/ws");
});

test("the older fragment forms still work", () => {
  expect(parseJoinUrl(at("https://ferry.example/#ABCDE-FGHJK/a%20b"))).toEqual({
    server: "wss://ferry.example/ws",
    room: "ABCDEFGHJK",
    password: "a b",
  });
  expect(parseJoinUrl(at("https://ferry.example/#ABCDEFGHJK"))).toEqual({ server: "wss://ferry.example/ws", room: "ABCDEFGHJK" });
  expect(parseJoinUrl(at("https://ferry.example/"))).toEqual({ server: "wss://ferry.example/ws" });
});

test("?server= names a signaling server on another origin", () => {
  expect(parseJoinUrl(at("https://app.example/j/ABCDEFGHJK?server=wss%3A%2F%2Fsignal.example%2Fws#pw"))).toEqual({
    server: "wss://signal.example/ws",
    room: "ABCDEFGHJK",
    password: "pw",
  });
  expect(parseJoinUrl(at("https://app.example/web.html?s=ws://127.0.0.1:9/ws#ABCDEFGHJK/pw")).server).toBe("ws://127.0.0.1:9/ws");
});

test("what is not a room or cannot be decoded is left for the form, not thrown", () => {
  expect(parseJoinUrl(at("https://ferry.example/j/nope#pw"))).toEqual({ server: "wss://ferry.example/ws", password: "pw" });
  // A bare % (typed by hand) is kept as written rather than failing the page.
  expect(parseJoinUrl({ protocol: "https:", host: "h", pathname: "/j/ABCDEFGHJK", search: "", hash: "#100%sure" }).password).toBe("100%sure");
  expect(parseJoinUrl(at("https://ferry.example/j/A/B#pw"))).toEqual({ server: "wss://ferry.example/ws" });
});
