//! The self-contained HTML report: one file, no script, no external resource, so it can be mailed or attached to
//! a ticket and opened anywhere. The timeline is an inline SVG chart of findings per hour (per day over a week).

use std::fmt::Write as _;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::tally::{Tally, SEVERITIES};

const COLOURS: [&str; 5] = ["#8b0000", "#d9480f", "#e8a200", "#4a7ab5", "#8a8f98"];
/// Over this many hours, the chart counts days.
const MOST_HOURS: i64 = 7 * 24;

/// Writes the report for `tally`; `inputs` names what was scanned.
pub fn render(tally: &mut Tally, inputs: &str) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>trailguard scan report</title>\n<style>{}</style></head><body>\n",
        STYLE
    );
    let _ = write!(
        page,
        "<h1>trailguard scan</h1>\n<p class=\"what\">{}</p>\n<p>{} event(s) read in {} file(s): <b>{} finding(s)</b>. \
         {} event(s) evaluated, {} passed over by the pre-filter (no rule is triggered by them); {} unreadable file(s), \
         {} unreadable record(s) skipped.</p>\n",
        escape(inputs),
        tally.events(),
        tally.files,
        tally.findings,
        tally.records,
        tally.passed_over,
        tally.unreadable_files,
        tally.unreadable_records
    );
    page.push_str("<div class=\"counts\">");
    for (i, severity) in SEVERITIES.iter().enumerate() {
        let count = tally.by_severity.get(&std::cmp::Reverse(*severity)).copied().unwrap_or(0);
        let colour = COLOURS.get(i).copied().unwrap_or("#888");
        let _ = write!(page, "<div style=\"border-color:{colour}\"><span>{count}</span>{}</div>", severity.as_str());
    }
    page.push_str("</div>\n<h2>Findings over time</h2>\n");
    page.push_str(&timeline(tally));
    page.push_str("<h2>By rule</h2>\n<table><tr><th>rule</th><th>findings</th></tr>\n");
    for (rule, count) in &tally.by_rule {
        let _ = writeln!(page, "<tr><td>{}</td><td class=\"n\">{count}</td></tr>", escape(rule));
    }
    page.push_str(
        "</table>\n<h2>Actors with the most findings</h2>\n<table><tr><th>actor</th><th>findings</th></tr>\n",
    );
    for (actor, count) in tally.actors(20) {
        let _ = writeln!(page, "<tr><td>{}</td><td class=\"n\">{count}</td></tr>", escape(actor));
    }
    page.push_str("</table>\n");
    if !tally.warnings.is_empty() {
        page.push_str("<h2>Notes</h2>\n<ul>\n");
        for (warning, count) in &tally.warnings {
            let _ = writeln!(page, "<li>{} ({count}x)</li>", escape(warning));
        }
        page.push_str("</ul>\n");
    }
    let total = tally.findings;
    let top = tally.top();
    let _ = write!(
        page,
        "<h2>Most severe findings ({} of {total})</h2>\n<table><tr><th>severity</th><th>time</th>\
         <th>rule</th><th>actor</th><th>what happened</th><th>account / region</th><th>event id</th></tr>\n",
        top.len()
    );
    for finding in top {
        let _ = writeln!(
            page,
            "<tr class=\"{sev}\"><td>{sev}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
            escape(finding.time.as_deref().unwrap_or("")),
            escape(&finding.rule),
            escape(&finding.actor.display_name()),
            escape(&finding.title),
            escape(finding.account.as_deref().unwrap_or("?")),
            escape(finding.region.as_deref().unwrap_or("?")),
            escape(finding.event_id.as_deref().unwrap_or("")),
            sev = finding.severity.as_str(),
        );
    }
    page.push_str("</table>\n</body></html>\n");
    page
}

/// The chart: one stacked bar per hour (or day), every hour between the first finding and the last.
fn timeline(tally: &Tally) -> String {
    let parse = |hour: &str| OffsetDateTime::parse(&format!("{hour}:00:00Z"), &Rfc3339).ok();
    let hours: Vec<(OffsetDateTime, [usize; 5])> =
        tally.timeline.iter().filter_map(|(h, counts)| parse(h).map(|t| (t, *counts))).collect();
    let undated: usize =
        tally.timeline.iter().filter(|(h, _)| parse(h).is_none()).map(|(_, c)| c.iter().sum::<usize>()).sum();
    let (Some(first), Some(last)) = (hours.first().map(|h| h.0), hours.last().map(|h| h.0)) else {
        return "<p>No dated findings.</p>\n".to_owned();
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
    let (width, height, left, bottom) = (960.0, 220.0, 40.0, 30.0);
    let bar_width = (width - left) / slots as f64;
    let scale = (height - bottom - 10.0) / highest as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"findings per {unit}\">\n<text x=\"0\" y=\"14\">{highest}</text><text x=\"0\" y=\"{}\">0</text>\n",
        height - bottom,
        unit = if by_day { "day" } else { "hour" }
    );
    for (i, bar) in bars.iter().enumerate() {
        let x = left + i as f64 * bar_width;
        let mut y = height - bottom;
        let when = start + step * i as i32;
        let label = if by_day { format!("{}", when.date()) } else { format!("{} {:02}:00", when.date(), when.hour()) };
        for (slot, count) in bar.iter().enumerate().filter(|(_, c)| **c > 0) {
            let h = *count as f64 * scale;
            y -= h;
            let severity = SEVERITIES.get(slot).map(|s| s.as_str()).unwrap_or("");
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{label}: {count} {severity}</title></rect>",
                (bar_width - 1.0).max(1.0),
                COLOURS.get(slot).copied().unwrap_or("#888"),
            );
        }
        let every = (slots / 8).max(1);
        if i % every == 0 {
            let _ = writeln!(svg, "<text x=\"{x:.1}\" y=\"{}\">{label}</text>", height - 8.0);
        }
    }
    svg.push_str("</svg>\n");
    if undated > 0 {
        let _ = writeln!(svg, "<p>{undated} finding(s) without a time are not in the chart.</p>");
    }
    svg
}

/// Text made safe for HTML: finding fields come from the records, which anyone able to call AWS can shape.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;\
vertical-align:top}td.n{text-align:right}.counts div{display:inline-block;border-left:6px solid;padding:4px 12px;\
margin-right:8px}.counts span{font-size:1.6em;display:block}svg text{font-size:11px;fill:#555}\
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
}
