export default function Page() {
  return <p>deployment matrix app</p>;
}
