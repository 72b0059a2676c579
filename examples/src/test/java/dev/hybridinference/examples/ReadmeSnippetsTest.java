package dev.hybridinference.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Compiles every {@code java} block of README.md against the published modules, as a new project would, so
 * that what a reader copies compiles. The rule, also in CONTRIBUTING.md:
 *
 * <ul>
 *   <li>A block with a line that starts (at column 0) a top-level type ({@code class}, {@code interface},
 *       {@code record}, {@code enum}, possibly after {@code public}, {@code final}, {@code abstract} or
 *       {@code sealed}) is a complete source file and compiles exactly as written, imports included.
 *   <li>Any other block is a fragment: the body of a method that may throw anything, in a class of its
 *       own that has the fragment's own {@code import} lines plus {@link #DEFAULT_IMPORTS}.
 *   <li>A fragment may start with {@code // given: Type name, Type name} lines: the variables it takes from
 *       the text around it, which become the method's parameters.
 * </ul>
 *
 * <p>Code that is not Java to compile (output, pseudo-code) goes in a {@code text} block.
 */
class ReadmeSnippetsTest {
    /** What a fragment may use without importing it. */
    static final List<String> DEFAULT_IMPORTS = List.of(
            "dev.hybridinference.core.*",
            "dev.hybridinference.core.cost.*",
            "dev.hybridinference.core.routing.*",
            "dev.hybridinference.core.spi.*",
            "dev.hybridinference.vllm.*",
            "dev.hybridinference.localgpu.*",
            "dev.hybridinference.sagemaker.*",
            "java.math.*",
            "java.nio.file.*",
            "java.time.*",
            "java.util.*",
            "java.util.concurrent.*");

    private static final Pattern FENCE = Pattern.compile("^(\\s*)(```+|~~~+)\\s*([A-Za-z0-9_+-]*).*$");
    private static final Pattern TOP_LEVEL_TYPE = Pattern.compile(
            "^(?:(?:public|final|abstract|sealed|non-sealed|strictfp)\\s+)*(?:class|interface|record|enum|@interface)"
                    + "\\s+([A-Za-z_$][A-Za-z0-9_$]*)",
            Pattern.MULTILINE);
    private static final Pattern PUBLIC_TYPE = Pattern.compile(
            "^public\\s+(?:(?:final|abstract|sealed|non-sealed|strictfp)\\s+)*(?:class|interface|record|enum|@interface)"
                    + "\\s+([A-Za-z_$][A-Za-z0-9_$]*)",
            Pattern.MULTILINE);
    private static final Pattern GIVEN = Pattern.compile("^\\s*//\\s*given:\\s*(.+)$");
    private static final Pattern IMPORT = Pattern.compile("^\\s*import\\s+[^;]+;\\s*$");

    /** Jars and folders on the test classpath that a new project using the SDK would not have. */
    private static final Pattern NOT_IN_A_NEW_PROJECT =
            Pattern.compile("(junit-|opentest4j-|apiguardian-|assertj-|byte-buddy|surefire)[^"
                    + Pattern.quote(File.separator) + "]*\\.jar$|examples" + Pattern.quote(File.separator) + "target");

    private static Path readme;

    /** One {@code java} block: where it starts in README.md (the first code line) and its lines. */
    record Block(int firstLine, String heading, List<String> lines) {
        String where() {
            return "README.md:" + firstLine + " (in \"" + heading + "\")";
        }
    }

    /** A generated source file, and for each of its lines the README line it came from (0: generated). */
    record Unit(Block block, String className, String source, int[] readmeLines) {}

    @BeforeAll
    static void findReadme() {
        readme = Path.of("..", "README.md").toAbsolutePath().normalize();
        assertThat(readme).as("README.md at the repository root").exists();
    }

    static List<Block> javaBlocks(List<String> lines) {
        List<Block> blocks = new ArrayList<>();
        String heading = "(top)";
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.startsWith("#")) {
                heading = line.replaceFirst("^#+\\s*", "");
                continue;
            }
            Matcher open = FENCE.matcher(line);
            if (!open.matches()) {
                continue;
            }
            String fence = open.group(2);
            String lang = open.group(3).toLowerCase(Locale.ROOT);
            List<String> body = new ArrayList<>();
            int j = i + 1;
            while (j < lines.size() && !lines.get(j).trim().startsWith(fence)) {
                body.add(lines.get(j));
                j++;
            }
            if (lang.equals("java")) {
                blocks.add(new Block(i + 2, heading, body));
            }
            i = j;
        }
        return blocks;
    }

    static Unit unit(Block b, int index) {
        String text = String.join("\n", b.lines());
        Matcher type = TOP_LEVEL_TYPE.matcher(text);
        if (type.find()) {
            Matcher pub = PUBLIC_TYPE.matcher(text);
            String name = pub.find() ? pub.group(1) : type.group(1);
            int[] map = new int[b.lines().size() + 1];
            for (int i = 0; i < b.lines().size(); i++) {
                map[i + 1] = b.firstLine() + i;
            }
            return new Unit(b, name, text + "\n", map);
        }
        String name = "ReadmeSnippet" + index;
        List<String> out = new ArrayList<>();
        List<Integer> map = new ArrayList<>();
        map.add(0); // lines are numbered from 1
        List<String> params = new ArrayList<>();
        List<String> body = new ArrayList<>();
        List<Integer> bodyLines = new ArrayList<>();
        boolean leading = true;
        for (int i = 0; i < b.lines().size(); i++) {
            String line = b.lines().get(i);
            int readmeLine = b.firstLine() + i;
            Matcher given = GIVEN.matcher(line);
            if (leading && given.matches()) {
                params.addAll(splitTopLevel(given.group(1)));
                continue;
            }
            if (IMPORT.matcher(line).matches()) {
                out.add(line);
                map.add(readmeLine);
                continue;
            }
            if (!line.isBlank()) {
                leading = false;
            }
            body.add(line);
            bodyLines.add(readmeLine);
        }
        for (String imp : DEFAULT_IMPORTS) {
            out.add("import " + imp + ";");
            map.add(0);
        }
        out.add("@SuppressWarnings(\"unused\") class " + name + " {");
        map.add(0);
        out.add("  static void snippet(" + String.join(", ", params) + ") throws Throwable {");
        map.add(0);
        out.addAll(body);
        map.addAll(bodyLines);
        out.add("  }");
        out.add("}");
        map.add(0);
        map.add(0);
        return new Unit(
                b,
                name,
                String.join("\n", out) + "\n",
                map.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Splits {@code Map<String, String> env, InferenceClient vllm} at the commas outside angle brackets. */
    static List<String> splitTopLevel(String s) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '<') {
                depth++;
            } else if (c == '>') {
                depth--;
            } else if (c == ',' && depth == 0) {
                parts.add(s.substring(start, i).trim());
                start = i + 1;
            }
        }
        String last = s.substring(start).trim();
        if (!last.isEmpty()) {
            parts.add(last);
        }
        return parts;
    }

    /** The test classpath less what only tests have: the published modules and their dependencies. */
    static String projectClasspath() {
        List<String> keep = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (!entry.isBlank() && !NOT_IN_A_NEW_PROJECT.matcher(entry).find()) {
                keep.add(entry);
            }
        }
        return String.join(File.pathSeparator, keep);
    }

    /** Compiles each block on its own; one message per block that does not compile. */
    static List<String> compile(List<Block> blocks) throws IOException {
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertThat(javac).as("a JDK's compiler").isNotNull();
        Path classes = Files.createDirectories(Path.of("target", "readme-snippets"));
        List<String> options =
                List.of("--release", "17", "-proc:none", "-d", classes.toString(), "-classpath", projectClasspath());
        List<String> failures = new ArrayList<>();
        try (StandardJavaFileManager files = javac.getStandardFileManager(null, null, StandardCharsets.UTF_8)) {
            for (int i = 0; i < blocks.size(); i++) {
                Unit u = unit(blocks.get(i), i + 1);
                DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
                JavaFileObject source =
                        new SimpleJavaFileObject(
                                URI.create("string:///" + u.className() + ".java"), JavaFileObject.Kind.SOURCE) {
                            @Override
                            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                                return u.source();
                            }
                        };
                boolean ok = javac.getTask(null, files, diagnostics, options, null, List.of(source))
                        .call();
                if (!ok) {
                    failures.add(describe(u, diagnostics.getDiagnostics()));
                }
            }
        }
        return failures;
    }

    @Test
    void everyJavaBlockOfTheReadmeCompiles() throws IOException {
        List<Block> blocks = javaBlocks(Files.readAllLines(readme, StandardCharsets.UTF_8));
        assertThat(blocks).as("java blocks in README.md").isNotEmpty();
        List<String> failures = compile(blocks);
        if (!failures.isEmpty()) {
            fail(failures.size() + " of " + blocks.size() + " java blocks in README.md do not compile (the rule is"
                    + " in CONTRIBUTING.md):\n\n" + String.join("\n\n", failures));
        }
    }

    @Test
    void blocksAreFoundWithTheirLineAndHeading() {
        List<Block> blocks = javaBlocks(List.of(
                "# Title",
                "```bash",
                "mvn verify",
                "```",
                "## Using it",
                "",
                "```java",
                "int x = 1;",
                "```",
                "````java",
                "String s = \"```\";",
                "````",
                "```text",
                "not java",
                "```"));
        assertThat(blocks).hasSize(2);
        assertThat(blocks.get(0).where()).isEqualTo("README.md:8 (in \"Using it\")");
        assertThat(blocks.get(0).lines()).containsExactly("int x = 1;");
        assertThat(blocks.get(1).lines()).containsExactly("String s = \"```\";");
    }

    @Test
    void fragmentsGetTheDefaultImportsAndTheirGivenVariables() throws IOException {
        Block fragment = new Block(
                40,
                "Routing",
                List.of(
                        "// given: InferenceClient vllm, Map<String, List<String>> tiers",
                        "import java.util.function.Supplier;",
                        "Supplier<String> id = () -> vllm.info().id();",
                        "Duration d = Duration.ofSeconds(tiers.size());"));
        assertThat(compile(List.of(fragment))).isEmpty();
    }

    @Test
    void aBlockThatDoesNotCompileIsNamedWithTheReadmeLineAndTheCompilerError() throws IOException {
        Block fragment =
                new Block(12, "Using it", List.of("ChatRequest r = ChatRequest.builder().build();", "client.chat(r);"));
        Block file = new Block(30, "Custom providers", List.of("public class Custom {", "    Path p;", "}"));
        List<String> failures = compile(List.of(fragment, file));
        assertThat(failures).hasSize(2);
        assertThat(failures.get(0))
                .startsWith("the java block at README.md:12 (in \"Using it\"):")
                .contains("README.md:13: error: cannot find symbol")
                .contains("variable client");
        // A complete file compiles as written: no default imports.
        assertThat(failures.get(1))
                .startsWith("the java block at README.md:30 (in \"Custom providers\"):")
                .contains("README.md:31: error: cannot find symbol")
                .contains("class Path");
    }

    private static String describe(Unit u, List<Diagnostic<? extends JavaFileObject>> diagnostics) {
        StringBuilder b = new StringBuilder("the java block at " + u.block().where() + ":");
        String[] generated = u.source().split("\n", -1);
        for (Diagnostic<? extends JavaFileObject> d : diagnostics) {
            if (d.getKind() != Diagnostic.Kind.ERROR) {
                continue;
            }
            int line = (int) d.getLineNumber();
            int readmeLine = line > 0 && line < u.readmeLines().length ? u.readmeLines()[line] : 0;
            String at = readmeLine > 0
                    ? "README.md:" + readmeLine
                    : "the generated wrapper, line " + line + " ("
                            + (line > 0 && line <= generated.length ? generated[line - 1].trim() : "") + ")";
            b.append("\n  ").append(at).append(": error: ").append(d.getMessage(Locale.ROOT));
        }
        return b.toString();
    }
}
