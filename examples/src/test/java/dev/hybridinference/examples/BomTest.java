package dev.hybridinference.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/**
 * The BOM lists every published module, nothing else, at the project's version. A module is published unless
 * its pom sets {@code maven.deploy.skip} to true (as examples and benchmarks do).
 */
class BomTest {
    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    private static Document read(Path pom) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return f.newDocumentBuilder().parse(pom.toFile());
    }

    /** The text of the first direct child of {@code parent} named {@code name}, or null. */
    private static String child(Element parent, String name) {
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element e && e.getTagName().equals(name)) {
                return e.getTextContent().trim();
            }
        }
        return null;
    }

    private static Element childElement(Element parent, String name) {
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element e && e.getTagName().equals(name)) {
                return e;
            }
        }
        return null;
    }

    @Test
    void theBomListsEveryPublishedModuleAtTheProjectVersion() throws Exception {
        Element root = read(ROOT.resolve("pom.xml")).getDocumentElement();
        String version = child(root, "version");
        TreeSet<String> published = new TreeSet<>();
        List<String> modules = new ArrayList<>();
        NodeList ms = childElement(root, "modules").getElementsByTagName("module");
        for (int i = 0; i < ms.getLength(); i++) {
            modules.add(ms.item(i).getTextContent().trim());
        }
        assertThat(modules).contains("bom", "sdk-core");
        for (String m : modules) {
            if (m.equals("bom")) {
                continue;
            }
            Element pom = read(ROOT.resolve(m).resolve("pom.xml")).getDocumentElement();
            Element props = childElement(pom, "properties");
            boolean skipped = props != null && "true".equals(child(props, "maven.deploy.skip"));
            if (!skipped) {
                published.add(child(pom, "artifactId"));
            }
        }

        Element bom = read(ROOT.resolve("bom").resolve("pom.xml")).getDocumentElement();
        assertThat(child(bom, "artifactId")).isEqualTo("hybrid-inference-bom");
        assertThat(child(bom, "version"))
                .as("bom/pom.xml's version (it has no parent, so it is kept in step by hand)")
                .isEqualTo(version);
        assertThat(childElement(bom, "parent"))
                .as("a parent would make importing the BOM also manage Jackson, OkHttp, JUnit...")
                .isNull();
        TreeSet<String> listed = new TreeSet<>();
        NodeList deps = childElement(childElement(bom, "dependencyManagement"), "dependencies")
                .getElementsByTagName("dependency");
        for (int i = 0; i < deps.getLength(); i++) {
            Element d = (Element) deps.item(i);
            assertThat(child(d, "groupId")).isEqualTo("dev.hybridinference");
            assertThat(child(d, "version")).isEqualTo("${project.version}");
            listed.add(child(d, "artifactId"));
        }
        assertThat(listed)
                .as("the modules in bom/pom.xml: every module of the root pom.xml that does not set"
                        + " maven.deploy.skip to true is published and belongs there")
                .isEqualTo(published);
        assertThat(Files.exists(ROOT.resolve("bom").resolve("src"))).isFalse();
        assertThat(pluginVersion(bom, "spotless-maven-plugin"))
                .as("the spotless version in bom/pom.xml, there for `mvn spotless:apply` at the root")
                .isEqualTo(pluginVersion(root, "spotless-maven-plugin"));
    }

    /** The version of the first plugin with that artifact id anywhere in the pom. */
    private static String pluginVersion(Element pom, String artifactId) {
        NodeList plugins = pom.getElementsByTagName("plugin");
        for (int i = 0; i < plugins.getLength(); i++) {
            Element p = (Element) plugins.item(i);
            if (artifactId.equals(child(p, "artifactId")) && child(p, "version") != null) {
                return child(p, "version");
            }
        }
        return null;
    }
}
