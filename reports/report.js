document.documentElement.setAttribute("data-script", "ran");
document.querySelectorAll("button.more").forEach(function (button) {
  button.addEventListener("click", function () {
    var table = button.previousElementSibling.querySelector("table");
    table.classList.toggle("all");
    button.textContent = table.classList.contains("all") ? "Show fewer rows" : button.dataset.label;
  });
  button.dataset.label = button.textContent;
});
