package dev.hybridinference.planner;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.Paint;
import java.awt.Rectangle;
import java.awt.Shape;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Rectangle2D;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.FieldPosition;
import java.text.NumberFormat;
import java.text.ParsePosition;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.function.DoubleFunction;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.AxisState;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.LogTick;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.NumberTick;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.DefaultDrawingSupplier;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.LegendTitle;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.RectangleInsets;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

/**
 * Charts of the planner's results, written as PNG or SVG.
 *
 * <p>The format follows the file's extension: {@code .png} or {@code .svg}, in any case. Missing parent
 * directories are created and an existing file is replaced. Charts are drawn off-screen: when the
 * {@code java.awt.headless} system property is not set, this class sets it to {@code true} before any
 * drawing, so it works on machines without a display.
 *
 * <p>The sweep chart is 1200 by 700 pixels (or SVG user units), the day chart 1200 by 800.
 *
 * <p>Each scenario keeps its colour and marker shape by its position in the input (the sweep's scenario
 * order, or the order of the results), so the same list gives the same colours in both charts.
 *
 * <p>Stateless and safe to use from several threads.
 */
public final class PlanCharts {
    static {
        // Before any drawing: the setting is read once, when the graphics environment starts.
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    /** Width of the sweep chart, in pixels (PNG) or user units (SVG). */
    static final int SWEEP_WIDTH = 1200;

    /** Height of the sweep chart. */
    static final int SWEEP_HEIGHT = 700;

    /** Width of the day chart. */
    static final int DAY_WIDTH = 1200;

    /** Height of the day chart: two plots stacked, so a little taller. */
    static final int DAY_HEIGHT = 800;

    // Okabe-Ito: tells scenarios apart for most kinds of colour blindness, and in greyscale prints.
    private static final Color[] PALETTE = {
        new Color(0x0072B2),
        new Color(0xD55E00),
        new Color(0x009E73),
        new Color(0xCC79A7),
        new Color(0xE69F00),
        new Color(0x56B4E9),
        new Color(0x000000),
        new Color(0xF0E442),
    };

    /** How far, in decades, a log axis reaches past the whole decades around its data. */
    private static final double DECADE_MARGIN = 0.04;

    private static final double MILLIS_PER_HOUR = Duration.ofHours(1).toMillis();

    private PlanCharts() {}

    /**
     * Writes the sweep: cost per day against tokens per day, both on log axes, one line per scenario, with a
     * dashed vertical marker and a label at each break-even.
     *
     * <p>A log axis cannot show zero: a point whose cost per day is zero (or whose volume is) is left out of
     * its line, which shows a gap there.
     *
     * @param sweep the sweep to draw; it must have at least one point
     * @param file where to write, ending in {@code .png} or {@code .svg}
     * @throws IllegalArgumentException if the sweep has no points or the extension is neither
     * @throws java.io.UncheckedIOException if the file cannot be written
     */
    public static void writeSweep(Sweep sweep, Path file) {
        Objects.requireNonNull(sweep, "sweep");
        Format format = Format.of(file);
        if (sweep.points().isEmpty()) {
            throw new IllegalArgumentException("sweep has no points: nothing to draw into " + file);
        }
        write(sweepChart(sweep), format, file, SWEEP_WIDTH, SWEEP_HEIGHT);
    }

    /**
     * Writes cost and latency over the traffic's span, from each result's {@link ScenarioResult#timeline()}:
     * two plots sharing a time axis in hours from the start. The upper plot is the cumulative cost in USD
     * (zero at the start, then the running total at the end of each interval); the lower one the 95th
     * percentile latency of each interval in seconds, drawn at the interval's middle, with a gap where no
     * request arrived.
     *
     * @param results the scenarios to draw; at least one must have a timeline
     * @param file where to write, ending in {@code .png} or {@code .svg}
     * @throws IllegalArgumentException if there are no results, none has a timeline, or the extension is
     *     neither
     * @throws java.io.UncheckedIOException if the file cannot be written
     */
    public static void writeDay(List<ScenarioResult> results, Path file) {
        Objects.requireNonNull(results, "results");
        Format format = Format.of(file);
        if (results.isEmpty()) {
            throw new IllegalArgumentException("no scenario results: nothing to draw into " + file);
        }
        if (results.stream().allMatch(r -> r.timeline().isEmpty())) {
            throw new IllegalArgumentException(
                    "no scenario result has a timeline (intervals): nothing to draw into " + file);
        }
        write(dayChart(results), format, file, DAY_WIDTH, DAY_HEIGHT);
    }

    private static JFreeChart sweepChart(Sweep sweep) {
        XYSeriesCollection lines = new XYSeriesCollection();
        for (String scenario : new LinkedHashSet<>(sweep.scenarios())) {
            XYSeries line = new XYSeries(scenario, true, false);
            for (Sweep.Point point : sweep.points()) {
                ScenarioResult result = point.results().get(scenario);
                if (result == null || point.tokensPerDay() <= 0) {
                    continue;
                }
                double cost = result.costPerDay().doubleValue();
                if (cost > 0) {
                    line.add(point.tokensPerDay(), cost);
                }
            }
            lines.addSeries(line);
        }

        LogAxis volume = logAxis(
                "tokens per day (log scale)",
                PlanFormat::tokens,
                lines.getDomainLowerBound(false),
                lines.getDomainUpperBound(false));
        LogAxis cost = logAxis(
                "cost per day, USD (log scale)",
                PlanFormat::usdTick,
                lines.getRangeLowerBound(false),
                lines.getRangeUpperBound(false));
        XYPlot plot = new XYPlot(lines, volume, cost, lineRenderer(lines.getSeriesCount(), true));
        stylePlot(plot);

        List<Sweep.BreakEven> breakEvens = sweep.breakEvens();
        for (int i = 0; i < breakEvens.size(); i++) {
            Sweep.BreakEven breakEven = breakEvens.get(i);
            if (!(breakEven.tokensPerDay() > 0)) {
                continue;
            }
            ValueMarker marker = new ValueMarker(breakEven.tokensPerDay());
            marker.setPaint(Color.DARK_GRAY);
            marker.setStroke(
                    new BasicStroke(1.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
            marker.setLabel(breakEvenLabel(breakEven));
            marker.setLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            marker.setLabelPaint(Color.DARK_GRAY);
            marker.setLabelBackgroundColor(new Color(255, 255, 255, 220));
            // Right of the line, unless that runs off the plot: then left of it.
            double at = (Math.log(breakEven.tokensPerDay()) - Math.log(volume.getLowerBound()))
                    / (Math.log(volume.getUpperBound()) - Math.log(volume.getLowerBound()));
            boolean leftOfLine = at > 0.6;
            marker.setLabelAnchor(leftOfLine ? RectangleAnchor.TOP_LEFT : RectangleAnchor.TOP_RIGHT);
            marker.setLabelTextAnchor(leftOfLine ? TextAnchor.TOP_RIGHT : TextAnchor.TOP_LEFT);
            // Neighbouring break-evens can sit close on the axis: step the labels down so they do not overlap.
            marker.setLabelOffset(new RectangleInsets(6 + 18 * (i % 4), 4, 2, 2));
            plot.addDomainMarker(marker);
        }

        JFreeChart chart = new JFreeChart("Cost per day by traffic volume", JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    /** {@code all-serverless → hybrid ≈ 1.3M/day}. */
    static String breakEvenLabel(Sweep.BreakEven breakEven) {
        return breakEven.below() + " \u2192 " + breakEven.above() + " \u2248 "
                + PlanFormat.tokens(breakEven.tokensPerDay()) + "/day";
    }

    private static JFreeChart dayChart(List<ScenarioResult> results) {
        XYSeriesCollection costs = new XYSeriesCollection();
        XYSeriesCollection latencies = new XYSeriesCollection();
        List<String> keys = seriesKeys(results);
        for (int s = 0; s < results.size(); s++) {
            ScenarioResult result = results.get(s);
            XYSeries cost = new XYSeries(keys.get(s), true, true);
            XYSeries latency = new XYSeries(keys.get(s), true, true);
            BigDecimal total = BigDecimal.ZERO;
            if (!result.timeline().isEmpty()) {
                cost.add(hours(result.timeline().get(0).offset()), 0.0);
            }
            for (ScenarioResult.Interval interval : result.timeline()) {
                total = total.add(interval.cost());
                cost.add(hours(interval.offset().plus(interval.length())), total.doubleValue());
                double middle = hours(interval.offset().plus(interval.length().dividedBy(2)));
                latency.add(middle, interval.requests() == 0 ? null : seconds(interval.p95()));
            }
            costs.addSeries(cost);
            latencies.addSeries(latency);
        }

        NumberAxis time = new NumberAxis("hours from start");
        time.setAutoRangeIncludesZero(true);
        time.setLowerMargin(0);
        time.setUpperMargin(0);
        CombinedDomainXYPlot plot = new CombinedDomainXYPlot(time);
        plot.setGap(12);

        NumberAxis costAxis = new NumberAxis("cumulative cost, USD");
        costAxis.setNumberFormatOverride(new TickFormat(PlanFormat::usdTick));
        XYPlot costPlot = new XYPlot(costs, null, costAxis, lineRenderer(costs.getSeriesCount(), false));
        stylePlot(costPlot);
        plot.add(costPlot, 1);

        NumberAxis latencyAxis = new NumberAxis("p95 latency per interval, s");
        latencyAxis.setAutoRangeIncludesZero(true);
        XYLineAndShapeRenderer latencyRenderer = lineRenderer(latencies.getSeriesCount(), false);
        // Small dots as well as lines: an interval between two quiet ones has no line to draw.
        latencyRenderer.setDefaultShapesVisible(true);
        for (int i = 0; i < latencies.getSeriesCount(); i++) {
            latencyRenderer.setSeriesShape(i, new Ellipse2D.Double(-2, -2, 4, 4));
        }
        XYPlot latencyPlot = new XYPlot(latencies, null, latencyAxis, latencyRenderer);
        stylePlot(latencyPlot);
        plot.add(latencyPlot, 1);

        JFreeChart chart =
                new JFreeChart("Cost and latency over the traffic", JFreeChart.DEFAULT_TITLE_FONT, plot, false);
        // Both plots have the same series in the same order: one legend, from the upper plot.
        LegendTitle legend = new LegendTitle(costPlot);
        legend.setPosition(RectangleEdge.BOTTOM);
        chart.addSubtitle(legend);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    /** The scenarios' names as series keys, which must differ: a repeated name gets {@code (2)}, {@code (3)}... */
    private static List<String> seriesKeys(List<ScenarioResult> results) {
        List<String> keys = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (ScenarioResult result : results) {
            String key = result.name();
            for (int n = 2; !seen.add(key); n++) {
                key = result.name() + " (" + n + ")";
            }
            keys.add(key);
        }
        return keys;
    }

    private static XYLineAndShapeRenderer lineRenderer(int series, boolean markers) {
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, markers);
        Shape[] shapes = DefaultDrawingSupplier.createStandardSeriesShapes();
        for (int i = 0; i < series; i++) {
            Paint paint = PALETTE[i % PALETTE.length];
            renderer.setSeriesPaint(i, paint);
            renderer.setSeriesStroke(i, new BasicStroke(2f));
            renderer.setSeriesShape(i, shapes[i % shapes.length]);
        }
        // Markers on sparse lines only: a day cut into minutes would be a row of blobs.
        renderer.setDefaultShapesVisible(markers);
        return renderer;
    }

    private static void stylePlot(XYPlot plot) {
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xDDDDDD));
        plot.setRangeGridlinePaint(new Color(0xDDDDDD));
        plot.setDomainGridlinesVisible(true);
        plot.setRangeGridlinesVisible(true);
    }

    /**
     * A base-10 axis with a labelled tick at each power of ten. The range is widened to whole decades around
     * the data (and a little beyond, so that end points are not cut by the border): every label is then a
     * round {@code 1M} or {@code $100} rather than {@code 6.3k} or {@code $630.96}, and at least two show.
     */
    private static LogAxis logAxis(String label, DoubleFunction<String> ticks, double min, double max) {
        LogAxis axis = new PlainLabelLogAxis(label, ticks);
        axis.setBase(10);
        axis.setNumberFormatOverride(new TickFormat(ticks));
        // One decade per major tick; minor ticks at 2x .. 9x in between.
        axis.setTickUnit(new NumberTickUnit(1.0, new TickFormat(ticks), 10), false, true);
        axis.setMinorTickMarksVisible(true);
        if (min > 0 && max > 0 && Double.isFinite(min) && Double.isFinite(max)) {
            double low = Math.floor(Math.log10(min));
            double high = Math.ceil(Math.log10(max));
            if (high == low) {
                high++;
            }
            axis.setRange(Math.pow(10, low - DECADE_MARGIN), Math.pow(10, high + DECADE_MARGIN));
        }
        return axis;
    }

    private static double hours(Duration offset) {
        return offset.toMillis() / MILLIS_PER_HOUR;
    }

    private static double seconds(Duration latency) {
        return latency.toNanos() / 1e9;
    }

    private static void write(JFreeChart chart, Format format, Path file, int width, int height) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            switch (format) {
                case PNG -> {
                    try (OutputStream out = Files.newOutputStream(file)) {
                        ChartUtils.writeChartAsPNG(out, chart, width, height);
                    }
                }
                case SVG -> {
                    SVGGraphics2D graphics = new SVGGraphics2D(width, height);
                    chart.draw(graphics, new Rectangle(0, 0, width, height));
                    // The element alone, under an XML declaration: no DOCTYPE, so strict parsers read it.
                    Files.writeString(
                            file,
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + graphics.getSVGElement() + "\n",
                            StandardCharsets.UTF_8);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write chart " + file + ": " + e.getMessage(), e);
        }
    }

    private enum Format {
        PNG,
        SVG;

        static Format of(Path file) {
            Objects.requireNonNull(file, "file");
            Path name = file.getFileName();
            String lower = name == null ? "" : name.toString().toLowerCase(Locale.ROOT);
            if (lower.endsWith(".png")) {
                return PNG;
            }
            if (lower.endsWith(".svg")) {
                return SVG;
            }
            throw new IllegalArgumentException(
                    "chart file " + file + " has an unknown extension: expected .png or .svg");
        }
    }

    /**
     * A log axis whose tick labels are plain strings. The stock axis labels its ticks with attributed strings
     * (for superscript exponents), which an SVG can only hold as glyph outlines; plain strings become
     * {@code <text>}, which stays sharp, searchable and selectable.
     */
    private static final class PlainLabelLogAxis extends LogAxis {
        private static final long serialVersionUID = 1L;

        private final transient DoubleFunction<String> ticks;

        PlainLabelLogAxis(String label, DoubleFunction<String> ticks) {
            super(label);
            this.ticks = ticks;
        }

        @Override
        @SuppressWarnings({"rawtypes", "unchecked"}) // the superclass's signature is a raw List
        public List refreshTicks(Graphics2D g2, AxisState state, Rectangle2D dataArea, RectangleEdge edge) {
            List<Object> plain = new ArrayList<>();
            for (Object tick : super.refreshTicks(g2, state, dataArea, edge)) {
                if (tick instanceof LogTick logTick) {
                    String text = logTick.getAttributedLabel() == null ? "" : ticks.apply(logTick.getValue());
                    plain.add(new NumberTick(
                            logTick.getTickType(),
                            logTick.getValue(),
                            text,
                            logTick.getTextAnchor(),
                            logTick.getRotationAnchor(),
                            logTick.getAngle()));
                } else {
                    plain.add(tick);
                }
            }
            return plain;
        }
    }

    /** Tick labels through one of {@link PlanFormat}'s display forms. */
    private static final class TickFormat extends NumberFormat {
        private static final long serialVersionUID = 1L;

        private final transient DoubleFunction<String> format;

        TickFormat(DoubleFunction<String> format) {
            this.format = format;
        }

        @Override
        public StringBuffer format(double number, StringBuffer toAppendTo, FieldPosition pos) {
            return toAppendTo.append(format.apply(number));
        }

        @Override
        public StringBuffer format(long number, StringBuffer toAppendTo, FieldPosition pos) {
            return toAppendTo.append(format.apply(number));
        }

        @Override
        public Number parse(String source, ParsePosition parsePosition) {
            throw new UnsupportedOperationException("tick labels are only written");
        }
    }
}
