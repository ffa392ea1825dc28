#include "ctl/cost_text.h"

#include <kj/vector.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "contract_json.h"
#include "ctl/report_text.h"
#include "ops/wall_clock.h"
#include "policy/run_cost.h"
#include "report/run_keys.h"

namespace tracer {

namespace {

kj::String money(double amount, kj::StringPtr currency) {
  if (currency.size() == 0) return kj::str("-");
  return kj::str(policy::formatMoney(amount, currency.cStr()));
}

kj::String share(double part, double whole) {
  if (whole <= 0) return kj::str();
  return kj::str(" (", fixed(part / whole * 100, 0), "%)");
}

kj::String trendText(proto::CostRow::Reader row) {
  if (listsUnknown(row.getUnknown(), "trend")) return kj::str("?");
  auto percent = fixed(row.getTrend() * 100, 0);
  if (percent == "0" || percent == "-0") return kj::str("0%");
  return kj::str(percent.startsWith("-") ? "" : "+", percent, "%");
}

kj::String rowName(kj::StringPtr by, proto::CostRow::Reader row) {
  // A deployment the history has flow runs of and no run: known by its key alone.
  if (row.getFlow().size() == 0) return kj::str(row.getKey());
  auto owner = displayName(RunOwner{row.getFlow(), "", row.getDeployment()});
  if (by == "task") return kj::str(owner, " / ", row.getTask());
  return owner;
}

// Columns as wide as their widest cell, two spaces apart.
kj::String table(const std::vector<std::vector<std::string>>& cells) {
  std::vector<size_t> widths;
  for (auto& line: cells) {
    widths.resize(std::max(widths.size(), line.size()));
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], line[i].size());
  }
  std::string text;
  for (auto& line: cells) {
    if (!text.empty()) text += "\n";
    for (size_t i = 0; i < line.size(); ++i) {
      text += line[i];
      if (i + 1 < line.size()) text += std::string(widths[i] - line[i].size() + 2, ' ');
    }
  }
  return kj::str(text);
}

struct Total {
  double used = 0, allocated = 0, waste = 0;
  kj::Vector<kj::String> notWhole;  // labels of its rows that are partial or leave runs out
};

}  // namespace

kj::String costText(proto::CostReport::Reader report) {
  kj::StringPtr by = report.getBy();
  kj::Vector<kj::String> out;
  out.add(kj::str("costs by ", by, " of the runs that finished from ",
                  utcMinute(report.getWindowStartNs()), " to ", utcMinute(report.getWindowEndNs()),
                  "; PREVIOUS: the window as long before it"));
  if (report.getRows().size() == 0) {
    out.add(kj::str("(no runs in the history in either window)"));
    for (auto note: report.getNotes()) out.add(kj::str("note: ", note));
    return kj::strArray(out, "\n");
  }

  std::vector<std::vector<std::string>> cells;
  cells.push_back({by == "task" ? "FLOW / TASK" : by == "flow" ? "FLOW" : "DEPLOYMENT", "RUNS",
                   "USED", "ALLOCATED", "WASTE", "PREVIOUS", "TREND"});
  kj::Vector<kj::String> labels;
  std::map<std::string, Total> totals;
  kj::Vector<kj::String> uncounted;  // rows with no cost in any currency
  for (auto row: report.getRows()) {
    kj::StringPtr currency = row.getCurrency();
    kj::Vector<kj::String> why;
    for (auto line: row.getPartialWhy()) why.add(kj::str("partial: ", line));
    if (row.getUnpricedRuns() > 0) {
      why.add(kj::str(row.getUnpricedRuns(), row.getUnpricedRuns() == 1 ? " run" : " runs",
                      " without a cost, left out of the sums"));
    }
    bool whole = why.size() == 0;
    if (listsUnknown(row.getUnknown(), "trend")) {
      kj::Vector<kj::String> reasons;
      for (auto line: row.getUnknownWhy()) reasons.add(kj::str(line));
      why.add(kj::str("trend unknown: ", kj::strArray(reasons, "; ")));
    }
    auto name = rowName(by, row);
    if (why.size() > 0) {
      auto label = kj::str("[", labels.size() + 1, "]");
      name = kj::str(name, " ", label);
      auto indent = kj::str("\n", kj::repeat(' ', label.size() + 1));
      labels.add(kj::str(label, " ", kj::strArray(why, indent.cStr())));
      if (!whole) {
        if (currency.size() == 0) {
          uncounted.add(kj::mv(label));
        } else {
          totals[currency.cStr()].notWhole.add(kj::mv(label));
        }
      }
    }
    if (currency.size() > 0) {
      auto& total = totals[currency.cStr()];
      total.used += row.getUsed();
      total.allocated += row.getAllocated();
      total.waste += row.getWaste();
    }
    bool previousKnown = !listsUnknown(row.getUnknown(), "previous_used");
    cells.push_back({name.cStr(), kj::str(row.getRuns()).cStr(),
                     money(row.getUsed(), currency).cStr(),
                     money(row.getAllocated(), currency).cStr(),
                     kj::str(money(row.getWaste(), currency),
                             currency.size() ? share(row.getWaste(), row.getAllocated())
                                             : kj::str()).cStr(),
                     (previousKnown ? money(row.getPreviousUsed(), currency) : kj::str("?")).cStr(),
                     trendText(row).cStr()});
  }
  out.add(kj::str());
  out.add(table(cells));
  if (labels.size() > 0) {
    out.add(kj::str());
    for (auto& label: labels) out.add(kj::mv(label));
  }
  for (auto note: report.getNotes()) out.add(kj::str("note: ", note));
  auto notListed = report.getRowsNotListed();
  if (notListed > 0) {
    out.add(kj::str("not listed: ", notListed, notListed == 1 ? " row" : " rows",
                    " that used less (an answer lists the ", report.getRows().size(),
                    " that used most); the totals are of the listed rows only"));
  }
  // Tasks' costs overlap (the note): a sum of them is no cost anything had.
  if (by == "task") return kj::strArray(out, "\n");
  out.add(kj::str());
  for (auto& [currency, total]: totals) {
    out.add(kj::str(notListed > 0 ? "total of the listed rows: used " : "total: used ",
                    money(total.used, currency), ", allocated ",
                    money(total.allocated, currency), ", waste ", money(total.waste, currency),
                    share(total.waste, total.allocated),
                    total.notWhole.size() == 0
                        ? kj::str()
                        : kj::str("; at least: ", kj::strArray(total.notWhole, ", "),
                                  " partial or with runs left out")));
  }
  if (uncounted.size() > 0) {
    out.add(kj::str("not in any total (no cost known): ", kj::strArray(uncounted, ", ")));
  }
  return kj::strArray(out, "\n");
}

}  // namespace tracer
