// A markdown artifact rendered as Prefect's UI renders it: react-markdown with
// remark-gfm, rehype-raw and rehype-sanitize, and ```mermaid code blocks drawn
// as diagrams by mermaid 11.
import React, { useEffect, useRef } from "react";
import { createRoot } from "react-dom/client";
import ReactMarkdown from "react-markdown";
import remarkGfm from "remark-gfm";
import rehypeRaw from "rehype-raw";
import rehypeSanitize from "rehype-sanitize";
import mermaid from "mermaid";

mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

let diagrams = 0;
let pending = 0;

function Mermaid({ text }) {
  const ref = useRef(null);
  useEffect(() => {
    pending += 1;
    mermaid
      .render(`diagram-${diagrams++}`, text)
      .then(({ svg }) => { ref.current.innerHTML = svg; })
      .catch((error) => { ref.current.textContent = `mermaid error: ${error.message}`; })
      .finally(() => {
        pending -= 1;
        if (pending === 0) document.body.dataset.rendered = "true";
      });
  }, [text]);
  return <div className="mermaid" ref={ref} />;
}

function Code({ className, children }) {
  if (className === "language-mermaid") return <Mermaid text={String(children)} />;
  return <code className={className}>{children}</code>;
}

function Artifact({ markdown }) {
  useEffect(() => {
    if (!markdown.includes("```mermaid")) document.body.dataset.rendered = "true";
  }, []);
  return (
    <ReactMarkdown remarkPlugins={[remarkGfm]} rehypePlugins={[rehypeRaw, rehypeSanitize]}
                   components={{ code: Code }}>
      {markdown}
    </ReactMarkdown>
  );
}

createRoot(document.getElementById("root")).render(<Artifact markdown={window.ARTIFACT_MARKDOWN} />);
