/**
 * The handoff section: idle gap between two sessions' inference turns and the timer wake-ups
 * their waiting costs, for the inference lock, the scheduler and a shared model load. Measured in
 * a child Node process (tools/load/bench/handoff-node.ts explains why Node and why a child: it
 * counts every timer callback in its process).
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import type { HandoffResult, TurnsResult } from "./handoff-node.ts";
import type { Section } from "./report.ts";

export const handoffSection: Section = {
  name: "handoff",
  title: "Handoff between two sessions (Node; idle gap between turns, timer wake-ups)",
  async run(context) {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--no-warnings", path.join(context.root, "tools", "load", "bench", "handoff-node.ts")],
      { cwd: context.root, timeout: Math.max(10_000, context.deadline - Date.now()) },
    );
    // The src dir is the one this tree runs; the JSON leaves it out.
    const { srcDir: _, ...result } = JSON.parse(stdout) as HandoffResult;
    const row = (name: string, r: TurnsResult) => [
      name,
      String(r.turns),
      r.gapMs.median.toFixed(3),
      r.gapMs.p95.toFixed(3),
      r.gapMs.max.toFixed(3),
      r.wakeUpsPerTurn.toFixed(2),
    ];
    return {
      json: result,
      table: {
        columns: ["what", "turns", "gap p50 ms", "gap p95 ms", "gap max ms", "wake-ups/turn"],
        rows: [
          row("inference lock", result.lock),
          row("scheduler (finals)", result.scheduler),
          [
            "model load, 4 waiters",
            "1",
            result.once.lateMs.toFixed(3),
            "",
            "",
            String(result.once.wakeUps),
          ],
        ],
      },
    };
  },
};
