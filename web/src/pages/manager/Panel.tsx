// One dashboard panel: a heading, a chart (canvas, aria-hidden: the table carries the numbers),
// the same numbers as an accessible table, and a CSV export of that table.
import { useEffect, useId, useRef, type ReactNode } from "react";
import { useI18n } from "../../i18n/i18n";
import { csvName, downloadCsv, type Cell } from "./csv";
import { echarts, type EChartsCoreOption } from "./echarts";

export interface TableData {
  header: string[];
  rows: Cell[][];
  /** Rows to highlight (e.g. outside ±2σ), by index. */
  flagged?: Set<number>;
}

export function Chart({ option, label }: { option: EChartsCoreOption; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const chart = echarts.init(box.current!, undefined, { renderer: "canvas" });
    chart.setOption({ animation: false, ...option });
    const resize = () => chart.resize();
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      chart.dispose();
    };
  }, [option]);
  return <div ref={box} className="chart" role="img" aria-label={label} />;
}

export function DataTable({ table, caption }: { table: TableData; caption: string }) {
  const { t, number } = useI18n();
  const show = (c: Cell) => (typeof c === "number" ? number(c, { maximumFractionDigits: 2 }) : c === true ? "✓" : c === false ? "" : (c ?? ""));
  return (
    <details className="data">
      <summary>{t("mgr.table.show", { n: table.rows.length })}</summary>
      <div className="table-wrap">
        <table>
          <caption>{caption}</caption>
          <thead>
            <tr>
              {table.header.map((h) => (
                <th key={h} scope="col">
                  {h}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {table.rows.map((r, i) => (
              <tr key={i} className={table.flagged?.has(i) ? "flagged" : undefined}>
                {r.map((c, j) =>
                  j === 0 ? (
                    <th key={j} scope="row">
                      {show(c)}
                    </th>
                  ) : (
                    <td key={j} className={typeof c === "number" ? "num" : undefined}>
                      {show(c)}
                    </td>
                  ),
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

export interface PanelProps {
  id: string;
  title: string;
  /** Loading / error / empty state, when there is nothing to draw. */
  status?: ReactNode;
  option?: EChartsCoreOption | null;
  table?: TableData | null;
  /** Controls (e.g. the funnel's grouping) and notes above the chart. */
  children?: ReactNode;
  wide?: boolean;
}

export function Panel({ id, title, status, option, table, children, wide }: PanelProps) {
  const { t } = useI18n();
  const h = useId();
  return (
    <section className={wide ? "panel wide" : "panel"} aria-labelledby={h} data-panel={id}>
      <header>
        <h2 id={h}>{title}</h2>
        {table && table.rows.length > 0 && (
          <button type="button" className="secondary" onClick={() => downloadCsv(csvName(id), table.header, table.rows)}>
            {t("mgr.csv")}
          </button>
        )}
      </header>
      {children}
      {status}
      {option && <Chart option={option} label={t("mgr.chart.label", { title })} />}
      {table && <DataTable table={table} caption={title} />}
    </section>
  );
}
