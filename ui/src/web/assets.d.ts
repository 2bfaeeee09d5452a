// Vite's `?url` imports: the built asset's URL.
declare module "*.wasm?url" {
  const url: string;
  export default url;
}
