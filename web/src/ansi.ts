/** One run of text with the SGR colours in force. */
export interface AnsiSpan {
  text: string;
  fg: string;
  bold: boolean;
}

const COLOURS = ["#000", "#c33", "#3a3", "#cc3", "#36c", "#c3c", "#3cc", "#ccc"];
const BRIGHT = ["#666", "#f66", "#6f6", "#ff6", "#69f", "#f6f", "#6ff", "#fff"];
// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[([0-9;]*)m/g;

/** Splits one log line into spans coloured by its SGR escapes (other escapes are dropped). */
export function ansiSpans(line: string): AnsiSpan[] {
  const spans: AnsiSpan[] = [];
  let fg = "";
  let bold = false;
  let last = 0;
  for (const m of line.matchAll(SGR)) {
    if (m.index > last) spans.push({ text: line.slice(last, m.index), fg, bold });
    last = m.index + m[0].length;
    for (const code of (m[1] || "0").split(";").map(Number)) {
      if (code === 0) fg = "";
      if (code === 0 || code === 22) bold = false;
      else if (code === 1) bold = true;
      else if (code >= 30 && code <= 37) fg = COLOURS[code - 30]!;
      else if (code >= 90 && code <= 97) fg = BRIGHT[code - 90]!;
      else if (code === 39) fg = "";
    }
  }
  if (last < line.length) spans.push({ text: line.slice(last), fg, bold });
  return spans;
}
