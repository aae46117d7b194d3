// Text modules bundled by wrangler (the "Text" rule in wrangler.toml): the API reference works offline.
declare module "*.txt" {
  const text: string;
  export default text;
}
