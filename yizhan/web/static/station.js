(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("yz-data").textContent);
  var T = D.text;
  var msg = document.getElementById("yz-report-msg");
  var comment = document.getElementById("yz-comment");
  var buttons = document.querySelectorAll("#yz-report button[data-code]");

  function say(text, warn) {
    msg.textContent = text;
    msg.className = warn ? "msg warn" : "msg";
    msg.hidden = false;
  }

  function busy(on) {
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = on; }
  }

  function send(code) {
    var body = { code: code };
    var text = comment.value.trim();
    if (text) { body.comment = text.slice(0, 1000); }
    if (D.origin) { body.location = D.origin; }
    busy(true);
    say(T.report_sending, false);
    fetch(D.reportUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      busy(false);
      if (r.status === 201 || r.status === 200) {
        comment.value = "";
        say(T.report_thanks, false);
      } else if (r.status === 429) {
        say(T.report_rate_limited, true);
      } else {
        say(T.report_error + " (" + r.status + ")", true);
      }
    }, function () {
      busy(false);
      say(T.report_offline, true);
    });
  }

  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (e) {
      send(e.currentTarget.getAttribute("data-code"));
    });
  }
})();
