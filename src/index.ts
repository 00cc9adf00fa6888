export { SessionObject } from "./session/session-object";

export default {
  async fetch(): Promise<Response> {
    return new Response("not yet", { status: 501 });
  },
} satisfies ExportedHandler;
