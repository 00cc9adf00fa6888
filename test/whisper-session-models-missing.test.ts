/**
 * A model object missing from R2 when the isolate first loads Whisper: the handshake is refused
 * 503 (a retry may succeed) and the next session loads the models once they are back. Alone in
 * its file, so nothing has loaded the models in this isolate before it (each test file runs in
 * an isolate of its own): it holds whatever order the tests run in.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import manifest_ from "../src/stt/model-manifest.json";
import { handshake, TestClient } from "./helpers/client";
import { seedModels } from "./helpers/models";

const Q = "?encoding=linear16&sample_rate=16000";

beforeAll(seedModels);

describe("models unavailable", () => {
  it("answers the handshake 503 while a model object is missing, and loads once it is back", async () => {
    const bucket = (env as unknown as { MODELS: R2Bucket }).MODELS;
    await bucket.delete(manifest_.files.encoder.key);
    const refused = await handshake(Q);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { err_code: string }).err_code).toBe("SERVICE_UNAVAILABLE");
    await seedModels(); // the next session retries the load: no failure is remembered
    const client = await TestClient.open(Q);
    expect((await client.finish()).closed.code).toBe(1000);
  });
});
