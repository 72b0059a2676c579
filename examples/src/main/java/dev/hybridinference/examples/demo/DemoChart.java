package dev.hybridinference.examples.demo;

import dev.hybridinference.core.Receipt;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.imageio.ImageIO;

/**
 * The demo's chart, drawn with {@code java.awt} (headless) and written as PNG: calls started per time bucket
 * per provider above, each provider's cumulative cost below, on the same time axis.
 */
final class DemoChart {
    private static final int WIDTH = 1000;
    private static final int HEIGHT = 640;
    private static final int LEFT = 90;
    private static final int RIGHT = 170;
    private static final Color[] COLORS = {
        new Color(0x1f77b4),
        new Color(0xff7f0e),
        new Color(0x2ca02c),
        new Color(0xd62728),
        new Color(0x9467bd),
        new Color(0x8c564b),
        new Color(0xe377c2),
        new Color(0x7f7f7f)
    };

    private DemoChart() {}

    /**
     * Draws the chart of these receipts into {@code file} (its folder is created if needed).
     *
     * @return the file written
     */
    static Path write(List<Receipt> receipts, Path file) {
        BufferedImage image = draw(receipts);
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            if (!ImageIO.write(image, "png", file.toFile())) {
                throw new IOException("no PNG writer in this JVM");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the chart to " + file + ": " + e.getMessage(), e);
        }
        return file;
    }

    static BufferedImage draw(List<Receipt> receipts) {
        List<Receipt> sorted = new ArrayList<>(receipts);
        sorted.sort(Comparator.comparing(Receipt::startedAt));
        Instant t0 = sorted.isEmpty() ? Instant.EPOCH : sorted.get(0).startedAt();
        long spanMillis = 1;
        for (Receipt r : sorted) {
            spanMillis = Math.max(
                    spanMillis,
                    Duration.between(t0, r.startedAt().plus(r.totalTime())).toMillis());
        }
        long bucket = Math.max(250, (spanMillis + 39) / 40);
        int buckets = (int) (spanMillis / bucket) + 1;

        Map<String, int[]> calls = new TreeMap<>();
        Map<String, List<double[]>> cost = new TreeMap<>();
        for (Receipt r : sorted) {
            long at = Duration.between(t0, r.startedAt()).toMillis();
            calls.computeIfAbsent(r.providerId(), k -> new int[buckets])[(int) Math.min(buckets - 1, at / bucket)]++;
        }
        // Cost is counted when a call ends, as the receipt arrives then.
        List<Receipt> byEnd = new ArrayList<>(sorted);
        byEnd.sort(Comparator.comparing(r -> r.startedAt().plus(r.totalTime())));
        Map<String, BigDecimal> running = new TreeMap<>();
        for (Receipt r : byEnd) {
            BigDecimal sum = running.merge(r.providerId(), r.cost(), BigDecimal::add);
            long end = Duration.between(t0, r.startedAt().plus(r.totalTime())).toMillis();
            cost.computeIfAbsent(r.providerId(), k -> new ArrayList<>()).add(new double[] {end, sum.doubleValue()});
        }
        List<String> providers = new ArrayList<>(calls.keySet());

        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
            g.drawString("hybrid-inference demo: calls and cost over time, per provider", LEFT, 28);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));

            int plotWidth = WIDTH - LEFT - RIGHT;
            int top1 = 60;
            int height1 = 230;
            int top2 = top1 + height1 + 70;
            int height2 = 200;

            // Calls started per bucket, bars side by side per provider.
            int maxCalls = 1;
            for (int[] c : calls.values()) {
                for (int v : c) {
                    maxCalls = Math.max(maxCalls, v);
                }
            }
            axes(g, top1, height1, plotWidth, spanMillis, maxCalls + " calls", "calls started per " + bucket + " ms");
            double bucketWidth = plotWidth * (double) bucket / spanMillis;
            double barWidth = Math.max(1, bucketWidth / Math.max(1, providers.size()) - 1);
            for (int p = 0; p < providers.size(); p++) {
                g.setColor(color(p));
                int[] c = calls.get(providers.get(p));
                for (int i = 0; i < buckets; i++) {
                    if (c[i] == 0) {
                        continue;
                    }
                    int h = (int) Math.round(height1 * (double) c[i] / maxCalls);
                    int x = LEFT + (int) (i * bucketWidth + p * (barWidth + 1));
                    g.fillRect(x, top1 + height1 - h, (int) Math.ceil(barWidth), h);
                }
            }

            // Cumulative cost, a step line per provider.
            double maxCost = 0;
            for (List<double[]> points : cost.values()) {
                maxCost = Math.max(maxCost, points.get(points.size() - 1)[1]);
            }
            maxCost = maxCost <= 0 ? 1e-9 : maxCost;
            axes(g, top2, height2, plotWidth, spanMillis, String.format("$%.6f", maxCost), "cumulative cost (USD)");
            g.setStroke(new BasicStroke(2f));
            for (int p = 0; p < providers.size(); p++) {
                g.setColor(color(p));
                int px = LEFT;
                int py = top2 + height2;
                for (double[] point : cost.getOrDefault(providers.get(p), List.of())) {
                    int x = LEFT + (int) (plotWidth * point[0] / spanMillis);
                    int y = top2 + height2 - (int) Math.round(height2 * point[1] / maxCost);
                    g.drawLine(px, py, x, py);
                    g.drawLine(x, py, x, y);
                    px = x;
                    py = y;
                }
                g.drawLine(px, py, LEFT + plotWidth, py);
            }
            g.setStroke(new BasicStroke(1f));

            // Legend.
            int ly = top1 + 10;
            for (int p = 0; p < providers.size(); p++) {
                g.setColor(color(p));
                g.fillRect(WIDTH - RIGHT + 20, ly + p * 22, 14, 14);
                g.setColor(Color.BLACK);
                g.drawString(providers.get(p), WIDTH - RIGHT + 42, ly + p * 22 + 12);
            }
        } finally {
            g.dispose();
        }
        return image;
    }

    private static void axes(Graphics2D g, int top, int height, int width, long spanMillis, String max, String title) {
        g.setColor(Color.BLACK);
        g.drawString(title, LEFT, top - 8);
        g.drawLine(LEFT, top, LEFT, top + height);
        g.drawLine(LEFT, top + height, LEFT + width, top + height);
        g.drawString(max, 8, top + 12);
        g.drawString("0", LEFT - 16, top + height);
        double seconds = spanMillis / 1000.0;
        double step = seconds <= 10 ? 1 : seconds <= 30 ? 5 : 10;
        for (double s = 0; s <= seconds + 1e-9; s += step) {
            int x = LEFT + (int) (width * s * 1000 / spanMillis);
            g.setColor(new Color(0xdddddd));
            g.drawLine(x, top, x, top + height - 1);
            g.setColor(Color.BLACK);
            g.drawString(String.format("%.0f s", s), x - 8, top + height + 16);
        }
    }

    private static Color color(int i) {
        return COLORS[i % COLORS.length];
    }
}
