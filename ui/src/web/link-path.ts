// Which path a connection took, read from the browser's statistics: the selected candidate
// pair and the less direct of its two ends, as ferry-core's rtc.rs `selected_path` says it. The
// receive and send runs report it in their `connected` event.
import type { PathKind } from "../ipc";

/** How long the browser may take to give its statistics before the path is "unknown". */
const STATS_MS = 1_000;

export type Stat = { id: string; type: string; [k: string]: unknown };

const RANK: Record<PathKind, number> = { relay: 4, prflx: 3, srflx: 2, host: 1, memory: 0, unknown: 0 };

function candidateKind(t: unknown): PathKind {
  return t === "host" || t === "srflx" || t === "prflx" || t === "relay" ? t : "unknown";
}

/** The selected candidate pair's path, as ferry-core rtc.rs `selected_path`: the less direct of
 * its two ends, a remote "prflx" read as what that address was announced as. */
export function selectedPath(stats: Stat[]): { path: "direct" | "relayed"; kind: PathKind } {
  const byId = new Map(stats.map((s) => [s.id, s]));
  const transport = stats.find((s) => s.type === "transport" && typeof s.selectedCandidatePairId === "string");
  const pair =
    (transport ? byId.get(transport.selectedCandidatePairId as string) : undefined) ??
    stats.find((s) => s.type === "candidate-pair" && s.selected === true) ??
    stats.find((s) => s.type === "candidate-pair" && s.nominated === true && s.state === "succeeded");
  if (!pair) return { path: "direct", kind: "unknown" };
  const local = byId.get(pair.localCandidateId as string);
  const remote = byId.get(pair.remoteCandidateId as string);
  let kr = candidateKind(remote?.candidateType);
  if (kr === "prflx" && remote) {
    const addr = (s: Stat) => s.address ?? s.ip;
    const announced = stats.find(
      (s) => s.type === "remote-candidate" && s.candidateType !== "prflx" && addr(s) === addr(remote) && s.port === remote.port,
    );
    if (announced) kr = candidateKind(announced.candidateType);
  }
  const kl = candidateKind(local?.candidateType);
  const kind = RANK[kr] >= RANK[kl] ? kr : kl;
  return { path: kind === "relay" ? "relayed" : "direct", kind };
}

/** The path the connection took, or "unknown" where the browser does not say in time. */
export async function linkPath(pc: RTCPeerConnection): Promise<{ path: "direct" | "relayed"; kind: PathKind }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const report = await Promise.race([pc.getStats(), new Promise<null>((r) => (timer = setTimeout(() => r(null), STATS_MS)))]);
    if (!report) return { path: "direct", kind: "unknown" };
    const stats: Stat[] = [];
    report.forEach((s: Stat) => stats.push(s));
    return selectedPath(stats);
  } catch {
    return { path: "direct", kind: "unknown" };
  } finally {
    clearTimeout(timer);
  }
}
