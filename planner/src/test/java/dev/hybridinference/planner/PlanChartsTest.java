package dev.hybridinference.planner;

import static dev.hybridinference.planner.PlanFixtures.HYBRID;
import static dev.hybridinference.planner.PlanFixtures.SERVER;
import static dev.hybridinference.planner.PlanFixtures.SERVERLESS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

class PlanChartsTest {
    @TempDir
    Path dir;

    @Test
    void sweepAsPngHasTheChartSizeAndItsDirectoriesAreCreated() throws Exception {
        Path file = dir.resolve("out/charts/sweep.png");

        PlanCharts.writeSweep(PlanFixtures.sweep(), file);

        BufferedImage image = ImageIO.read(file.toFile());
        assertThat(image).isNotNull();
        assertThat(image.getWidth()).isEqualTo(1200);
        assertThat(image.getHeight()).isEqualTo(700);
    }

    @Test
    void sweepAsSvgIsXmlWithTheScenariosTheBreakEvensAndReadableTicks() throws Exception {
        Path file = dir.resolve("sweep.svg");

        PlanCharts.writeSweep(PlanFixtures.sweep(), file);

        Document svg = parse(file);
        assertThat(svg.getDocumentElement().getLocalName()).isEqualTo("svg");
        List<String> texts = texts(svg);
        assertThat(texts)
                .contains(SERVERLESS, HYBRID, SERVER)
                .contains("all-serverless \u2192 hybrid \u2248 1.3M/day", "hybrid \u2192 all-server \u2248 85M/day")
                .contains("10k", "1M", "100M", "1B")
                .contains("$1", "$10")
                .contains("Cost per day by traffic volume");
    }

    @Test
    void dayAsPngHasTheChartSize() throws Exception {
        Path file = dir.resolve("day.png");

        PlanCharts.writeDay(PlanFixtures.results(), file);

        BufferedImage image = ImageIO.read(file.toFile());
        assertThat(image.getWidth()).isEqualTo(1200);
        assertThat(image.getHeight()).isEqualTo(800);
    }

    @Test
    void dayAsSvgNamesTheScenariosAndBothAxes() throws Exception {
        Path file = dir.resolve("day.svg");

        PlanCharts.writeDay(PlanFixtures.results(), file);

        List<String> texts = texts(parse(file));
        assertThat(texts).contains(SERVERLESS, HYBRID, SERVER).contains("hours from start", "$0", "$1");
    }

    @Test
    void theExtensionIsReadInAnyCase() throws Exception {
        Path file = dir.resolve("SWEEP.PNG");

        PlanCharts.writeSweep(PlanFixtures.sweep(), file);

        assertThat(ImageIO.read(file.toFile()).getWidth()).isEqualTo(1200);
    }

    @Test
    void anotherExtensionIsRefusedWithTheFileAndTheAcceptedOnes() {
        Path file = dir.resolve("sweep.pdf");

        assertThatThrownBy(() -> PlanCharts.writeSweep(PlanFixtures.sweep(), file))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(file.toString())
                .hasMessageContaining(".png")
                .hasMessageContaining(".svg");
        assertThatThrownBy(() -> PlanCharts.writeDay(PlanFixtures.results(), dir.resolve("day")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("day");
        assertThat(file).doesNotExist();
    }

    @Test
    void emptyInputIsRefused() {
        Sweep empty = new Sweep(List.of(SERVERLESS), List.of(), List.of());

        assertThatThrownBy(() -> PlanCharts.writeSweep(empty, dir.resolve("sweep.png")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no points");
        assertThatThrownBy(() -> PlanCharts.writeDay(List.of(), dir.resolve("day.png")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no scenario results");
        assertThat(dir.resolve("sweep.png")).doesNotExist();
    }

    @Test
    void resultsWithoutATimelineAreRefused() {
        ScenarioResult r = PlanFixtures.day(HYBRID, "1", "0", 0.5);
        ScenarioResult noTimeline = PlanFixtures.altered(r, r.p50(), List.of(), List.of());

        assertThatThrownBy(() -> PlanCharts.writeDay(List.of(noTimeline), dir.resolve("day.svg")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("timeline");
    }

    @Test
    void aFileThatCannotBeWrittenIsNamedInTheError() throws Exception {
        Path blocker = Files.writeString(dir.resolve("not-a-directory"), "x");
        Path file = blocker.resolve("sweep.svg");

        assertThatThrownBy(() -> PlanCharts.writeSweep(PlanFixtures.sweep(), file))
                .isInstanceOf(UncheckedIOException.class)
                .hasMessageContaining(file.toString());
    }

    @Test
    void aSweepWithOnePointAndNoBreakEvenStillDraws() throws Exception {
        Sweep sweep = PlanFixtures.sweep();
        Sweep one = new Sweep(sweep.scenarios(), List.of(sweep.points().get(2)), List.of());
        Path file = dir.resolve("one.png");

        PlanCharts.writeSweep(one, file);

        assertThat(ImageIO.read(file.toFile()).getHeight()).isEqualTo(700);
    }

    @Test
    void repeatedScenarioNamesAreDrawnApart() throws Exception {
        List<ScenarioResult> twice =
                List.of(PlanFixtures.day(HYBRID, "1", "0", 0.5), PlanFixtures.day(HYBRID, "2", "0", 0.5));
        Path file = dir.resolve("twice.svg");

        PlanCharts.writeDay(twice, file);

        assertThat(texts(parse(file))).contains(HYBRID, "hybrid (2)");
    }

    /** A strict parse: no DOCTYPE, no external entities. */
    private static Document parse(Path file) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        DocumentBuilder builder = factory.newDocumentBuilder();
        return builder.parse(file.toFile());
    }

    /** The text of every element that holds text directly, trimmed. */
    private static List<String> texts(Document document) {
        List<String> texts = new ArrayList<>();
        NodeList all = document.getElementsByTagNameNS("*", "*");
        for (int i = 0; i < all.getLength(); i++) {
            StringBuilder own = new StringBuilder();
            for (Node child = all.item(i).getFirstChild(); child != null; child = child.getNextSibling()) {
                if (child.getNodeType() == Node.TEXT_NODE || child.getNodeType() == Node.CDATA_SECTION_NODE) {
                    own.append(child.getNodeValue());
                }
            }
            String text = own.toString().trim();
            if (!text.isEmpty()) {
                texts.add(text);
            }
        }
        return texts;
    }
}
