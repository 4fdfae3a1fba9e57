import pc from 'picocolors';

type Colors = ReturnType<typeof pc.createColors>;

/**
 * Colour on a terminal only. picocolors alone turns colour on whenever `CI`
 * is set, even into a pipe; here `FORCE_COLOR` / `NO_COLOR` decide first,
 * then whether the stream is a terminal.
 */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

let stdoutColors: Colors | undefined;
/** Colours for standard output, decided on first use. */
export function colors(): Colors {
  stdoutColors ??= pc.createColors(useColor(process.stdout));
  return stdoutColors;
}
