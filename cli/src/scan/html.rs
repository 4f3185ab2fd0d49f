//! The self-contained HTML report: one file, no script, no external resource, so it can be mailed or attached to
//! a ticket and opened anywhere. The timeline is an inline SVG chart of findings per hour (per day over a week).
//!
//! The page is a `maud` template: checked when the crate compiles, and every value spliced into it is escaped
//! unless marked otherwise (only the fixed style sheet is). Finding fields come from the records, which anyone
//! able to call AWS can shape.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::tally::{Tally, SEVERITIES};
use crate::action::iam_action;

const COLOURS: [&str; 5] = ["#8b0000", "#d9480f", "#e8a200", "#4a7ab5", "#8a8f98"];
/// Over this many hours, the chart counts days.
const MOST_HOURS: i64 = 7 * 24;
/// The chart's size and margins, in pixels.
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 36.0;
/// The widest width of one character of an axis label at the chart's 11 px font (digits and `-`, `:`), and the
/// least space between two labels.
const CHAR_PX: f64 = 7.0;
const LABEL_GAP: f64 = 12.0;

/// Writes the report for `tally`; `inputs` names what was scanned.
pub fn render(tally: &mut Tally, inputs: &str) -> String {
    let descriptions: Vec<(&str, &str)> =
        trailguard_core::rules::registry().iter().map(|r| (r.id(), r.description())).collect();
    let description = |rule: &str| descriptions.iter().find(|(id, _)| *id == rule).map_or("", |(_, d)| *d);
    let chart = timeline(tally);
    let actors = tally.actors(20);
    let summary = html! {
        h1 { "trailguard scan" }
        p.what { (inputs) }
        p {
            (tally.events()) " event(s) read in " (tally.files) " file(s): " b { (tally.findings) " finding(s)" } ". "
            (tally.records) " event(s) evaluated, " (tally.passed_over)
            " passed over by the pre-filter (no rule is triggered by them); " (tally.unreadable_files)
            " unreadable file(s), " (tally.unreadable_records) " unreadable record(s) skipped."
        }
        div.counts {
            @for (severity, colour) in SEVERITIES.iter().zip(COLOURS) {
                div style={ "border-color:" (colour) } {
                    span { (tally.by_severity.get(&std::cmp::Reverse(*severity)).copied().unwrap_or(0)) }
                    (severity.as_str())
                }
            }
        }
        h2 { "Findings over time" }
        (chart)
        h2 { "By rule" }
        table.rules {
            tr { th { "rule" } th.n { "findings" } th { "what it looks for" } }
            @for (rule, count) in &tally.by_rule {
                tr { td { (rule) } td.n { (count) } td { (description(rule)) } }
            }
        }
        h2 { "Actors with the most findings" }
        table {
            tr { th { "actor" } th.n { "findings" } }
            @for (actor, count) in &actors {
                tr { td { (actor) } td.n { (count) } }
            }
        }
        @if !tally.warnings.is_empty() {
            h2 { "Notes" }
            ul {
                @for (warning, count) in &tally.warnings {
                    li { (warning) " (" (count) "x)" }
                }
            }
        }
    };
    let total = tally.findings;
    let top = tally.top();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "trailguard scan report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (summary)
                h2 { "Most severe findings (" (top.len()) " of " (total) ")" }
                table.findings {
                    colgroup {
                        col style="width:5.5em"; col style="width:12.5em"; col style="width:11.5em"; col style="width:15em";
                        col; col style="width:11em";
                    }
                    tr {
                        th { "severity" } th { "time" } th { "rule" } th { "actor" } th { "what happened" }
                        th { "account / region / event" }
                    }
                    @for finding in top {
                        tr class=(finding.severity.as_str()) {
                            td { (finding.severity.as_str()) }
                            td.time { (finding.time.as_deref().map(|t| t.replacen('T', " ", 1)).unwrap_or_default()) }
                            td { (finding.rule) }
                            td { (finding.actor.display_name()) }
                            td {
                                (crate::action::title(finding))
                                @if finding.attempt { " (attempt: the call failed)" }
                                br;
                                span.action { (iam_action(&finding.event_source, &finding.event_name)) }
                                @for note in &finding.evidence.notes { br; span.note { (note) } }
                            }
                            td {
                                (finding.account.as_deref().unwrap_or("?")) " / " (finding.region.as_deref().unwrap_or("?"))
                                br; span.id { (finding.event_id.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string() + "\n"
}

/// An axis label: its left edge and its lines (time, and the date where it changes).
#[derive(Debug, PartialEq)]
struct Label {
    x: f64,
    lines: Vec<String>,
}

/// The most pixels one label can take: the date, ten characters.
fn label_width() -> f64 {
    10.0 * CHAR_PX
}

/// Which slots get a label: every `every`-th, where `every` is the least "round" step (1, 2, 3, 4, 6, 8, 12 or
/// 24 hours; 1, 2 or 7 days, then weeks) that keeps labels a label's width and a gap apart; hours land on
/// multiples of the step.
fn label_slots(slots: usize, bar_width: f64, by_day: bool, first_hour: u8) -> Vec<usize> {
    let least = ((label_width() + LABEL_GAP) / bar_width).ceil().max(1.0) as usize;
    let round: &[usize] = if by_day { &[1, 2, 7] } else { &[1, 2, 3, 4, 6, 8, 12, 24] };
    let unit = if by_day { 7 } else { 24 };
    let every = round.iter().copied().find(|r| *r >= least).unwrap_or_else(|| least.div_ceil(unit) * unit);
    let offset = if by_day || every > 24 { 0 } else { (every - usize::from(first_hour) % every) % every };
    (offset..slots).step_by(every).collect()
}

/// The chart: one stacked bar per hour (or day), every hour between the first finding and the last.
fn timeline(tally: &Tally) -> Markup {
    let parse = |hour: &str| OffsetDateTime::parse(&format!("{hour}:00:00Z"), &Rfc3339).ok();
    let hours: Vec<(OffsetDateTime, [usize; 5])> =
        tally.timeline.iter().filter_map(|(h, counts)| parse(h).map(|t| (t, *counts))).collect();
    let undated: usize =
        tally.timeline.iter().filter(|(h, _)| parse(h).is_none()).map(|(_, c)| c.iter().sum::<usize>()).sum();
    let (Some(first), Some(last)) = (hours.first().map(|h| h.0), hours.last().map(|h| h.0)) else {
        return html! { p { "No dated findings." } };
    };
    let by_day = (last - first).whole_hours() >= MOST_HOURS;
    let step = if by_day { Duration::days(1) } else { Duration::hours(1) };
    let floor = |t: OffsetDateTime| if by_day { t.replace_time(time::Time::MIDNIGHT) } else { t };
    let start = floor(first);
    let slots = ((floor(last) - start).whole_hours() / step.whole_hours() + 1).max(1) as usize;
    let mut bars = vec![[0usize; 5]; slots];
    for (t, counts) in &hours {
        let slot = ((floor(*t) - start).whole_hours() / step.whole_hours()) as usize;
        if let Some(bar) = bars.get_mut(slot) {
            for (total, n) in bar.iter_mut().zip(counts) {
                *total += n;
            }
        }
    }
    let highest = bars.iter().map(|b| b.iter().sum::<usize>()).max().unwrap_or(1).max(1);
    let bar_width = (WIDTH - LEFT) / slots as f64;
    let scale = (HEIGHT - BOTTOM - 10.0) / highest as f64;
    let when = |i: usize| start + step * i as i32;
    let name = |t: OffsetDateTime| match by_day {
        true => format!("{}", t.date()),
        false => format!("{} {:02}:00", t.date(), t.hour()),
    };
    // Each bar's segments, most severe at the bottom: (x, y, height, severity slot, count, bar).
    let mut rects = Vec::new();
    for (i, bar) in bars.iter().enumerate() {
        let x = LEFT + i as f64 * bar_width;
        let mut y = HEIGHT - BOTTOM;
        for (slot, count) in bar.iter().enumerate().filter(|(_, c)| **c > 0) {
            let h = *count as f64 * scale;
            y -= h;
            rects.push((x, y, h, slot, *count, i));
        }
    }
    let labels = axis_labels(slots, bar_width, by_day, start);
    let unit = if by_day { "day" } else { "hour" };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(HEIGHT) role="img"
            aria-label={ "findings per " (unit) } {
            text x="0" y="14" { (highest) }
            text x="0" y=(HEIGHT - BOTTOM) { "0" }
            @for (x, y, h, slot, count, i) in &rects {
                rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{:.1}", (bar_width - 1.0).max(1.0)))
                    height=(format!("{h:.1}")) fill=(COLOURS.get(*slot).copied().unwrap_or("#888")) {
                    title {
                        (name(when(*i))) ": " (count) " " (SEVERITIES.get(*slot).map(|s| s.as_str()).unwrap_or(""))
                    }
                }
            }
            @for label in &labels {
                text.axis x=(format!("{:.1}", label.x)) y=(HEIGHT - BOTTOM + 14.0) {
                    @for (n, line) in label.lines.iter().enumerate() {
                        tspan x=(format!("{:.1}", label.x)) dy=(if n == 0 { "0" } else { "13" }) { (line) }
                    }
                }
            }
        }
        @if undated > 0 {
            p { (undated) " finding(s) without a time are not in the chart." }
        }
    }
}

/// The labels under the bars: for hours, `13:00` with the date under the first label of each day; for days,
/// the date. They never overlap (see [`label_slots`]) and never run past the chart's right edge.
fn axis_labels(slots: usize, bar_width: f64, by_day: bool, start: OffsetDateTime) -> Vec<Label> {
    let step = if by_day { Duration::days(1) } else { Duration::hours(1) };
    let mut last_date = None;
    label_slots(slots, bar_width, by_day, start.hour())
        .into_iter()
        .map(|i| (LEFT + i as f64 * bar_width, start + step * i as i32))
        .filter(|(x, _)| x + label_width() <= WIDTH || slots == 1)
        .map(|(x, t)| {
            let date = t.date().to_string();
            let lines = match by_day {
                true => vec![date],
                false if last_date.as_ref() != Some(&date) => {
                    last_date = Some(date.clone());
                    vec![format!("{:02}:00", t.hour()), date]
                }
                false => vec![format!("{:02}:00", t.hour())],
            };
            Label { x, lines }
        })
        .collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin-bottom:1em}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;\
vertical-align:top}td{overflow-wrap:anywhere}td.n,th.n{text-align:right;white-space:nowrap}\
table.rules td:first-child,td.time{white-space:nowrap}table.findings{table-layout:fixed;width:100%}\
.counts div{display:inline-block;border-left:6px solid;padding:4px 12px;margin-right:8px}\
.counts span{font-size:1.6em;display:block}svg text{font-size:11px;fill:#555}\
.action,.id{font-family:ui-monospace,monospace;font-size:0.9em;color:#555}.note{color:#444;font-size:0.92em}\
tr.critical td:first-child{color:#8b0000;font-weight:bold}tr.high td:first-child{color:#d9480f}.what{color:#666}";

#[cfg(test)]
mod tests {
    use super::*;
    use trailguard_core::{Config, Engine};

    fn tally_of(records: &[String]) -> Tally {
        let engine = Engine::new(Config::default());
        let mut tally = Tally::keeping(50);
        for json in records {
            let record = trailguard_core::event::parse_record(json).unwrap();
            tally.records += 1;
            for finding in engine.evaluate_offline(&record).findings {
                tally.add(finding);
            }
        }
        tally
    }

    fn root_login(time: &str, session: &str) -> String {
        format!(
            r#"{{"userIdentity":{{"type":"Root","arn":"arn:aws:iam::123456789012:root","userName":"{session}"}},
            "eventTime":"{time}","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin",
            "eventID":"{session}","recipientAccountId":"123456789012","awsRegion":"us-east-1"}}"#
        )
    }

    #[test]
    fn the_report_is_self_contained_and_escapes_what_records_say() {
        let hostile = r#"<script>alert(1)</script>"#;
        let mut tally = tally_of(&[
            root_login("2026-11-01T10:05:00Z", hostile),
            root_login("2026-11-01T13:30:00Z", "b"),
            root_login("2026-11-01T13:40:00Z", "c"),
        ]);
        let page = render(&mut tally, "trail/ & more");
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(!page.contains("<script") && page.contains("&lt;script&gt;"), "records cannot inject markup");
        assert!(page.contains("trail/ &amp; more"));
        for external in ["src=", "href=", "<link", "@import", "url("] {
            assert!(!page.contains(external), "no external resource: {external}");
        }
        // One bar per hour from 10:00 to 13:00, the last twice as tall as the first.
        assert!(page.contains("findings per hour"));
        assert_eq!(page.matches("<rect ").count(), 2);
        assert!(page.contains("2026-11-01 13:00: 2 critical") || page.contains("2026-11-01 13:00: 2 "), "{page}");
        assert!(page.contains("<b>3 finding(s)</b>"));
    }

    #[test]
    fn a_long_span_is_counted_by_day() {
        let mut tally = tally_of(&[root_login("2026-10-01T10:05:00Z", "a"), root_login("2026-11-01T13:30:00Z", "b")]);
        let page = render(&mut tally, "x");
        assert!(page.contains("findings per day"));
        assert!(page.contains("2026-10-01: 1 ") && page.contains("2026-11-01: 1 "), "{page}");
        assert!(page.contains(">2026-10-01<"), "days are labelled");
    }

    /// Labels at least a label's width apart, whatever the span and at the chart's fixed width: at 1300 px,
    /// hourly labels of a day used to overlap.
    #[test]
    fn axis_labels_never_overlap() {
        let start = OffsetDateTime::parse("2026-11-01T13:00:00Z", &Rfc3339).unwrap();
        for by_day in [false, true] {
            for slots in 1..=400 {
                let bar_width = (WIDTH - LEFT) / slots as f64;
                let labels = axis_labels(slots, bar_width, by_day, start);
                assert!(!labels.is_empty(), "{slots} slots have a label");
                for pair in labels.windows(2) {
                    let widest = pair[0].lines.iter().map(|l| l.len()).max().unwrap() as f64 * CHAR_PX;
                    assert!(pair[1].x - pair[0].x >= widest + LABEL_GAP, "{slots} slots: {pair:?}");
                }
                let last = labels.last().unwrap();
                assert!(slots == 1 || last.x + label_width() <= WIDTH, "{slots} slots: {last:?} runs off the chart");
            }
        }
        // A day by the hour: labels on round hours, the date under the first and under midnight.
        let labels = axis_labels(24, (WIDTH - LEFT) / 24.0, false, start);
        let lines: Vec<&str> = labels.iter().flat_map(|l| l.lines.iter().map(String::as_str)).collect();
        assert_eq!(lines[..2], ["15:00", "2026-11-01"], "{lines:?}");
        assert!(lines.contains(&"00:00") && lines.contains(&"2026-11-02"), "{lines:?}");
    }
}
